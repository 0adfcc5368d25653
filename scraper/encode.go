package scraper

import (
	"math"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/protobuf/encoding/protowire"
)

// The protobuf encoding of a remote-write request (arguspb.WriteRequest,
// the wire format of prometheus.WriteRequest), written by hand: field
// numbers of argus.proto.
const (
	fieldTimeseries = 1 // WriteRequest.timeseries
	fieldLabels     = 1 // TimeSeries.labels
	fieldSamples    = 2 // TimeSeries.samples
	fieldHistograms = 4 // TimeSeries.histograms
	fieldName       = 1 // Label.name
	fieldValue      = 2 // Label.value
	fieldSampleVal  = 1 // Sample.value (fixed64)
	fieldSampleTS   = 2 // Sample.timestamp_ms (varint)
)

// appendFloatSeries appends to b one WriteRequest.timeseries entry: ls with
// one sample (t, v). Zero fields are left out, as proto3 marshalling does,
// so the bytes are those arguspb's MarshalVT writes for the same series;
// v's bits are kept as they are (a staleness marker is one NaN among many).
func appendFloatSeries(b []byte, ls labels.Labels, t int64, v float64) []byte {
	bits := math.Float64bits(v)
	sample := 0
	if bits != 0 {
		sample += 1 + 8
	}
	if t != 0 {
		sample += 1 + protowire.SizeVarint(uint64(t))
	}
	size := labelsSize(ls) + 1 + protowire.SizeVarint(uint64(sample)) + sample
	b = protowire.AppendTag(b, fieldTimeseries, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	b = appendLabels(b, ls)
	b = protowire.AppendTag(b, fieldSamples, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(sample))
	if bits != 0 {
		b = protowire.AppendTag(b, fieldSampleVal, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, bits)
	}
	if t != 0 {
		b = protowire.AppendTag(b, fieldSampleTS, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(t))
	}
	return b
}

// appendHistogramSeries appends to b one timeseries entry: ls with one
// histogram sample, h (an encoded prometheus.Histogram).
func appendHistogramSeries(b []byte, ls labels.Labels, h []byte) []byte {
	size := labelsSize(ls) + 1 + protowire.SizeBytes(len(h))
	b = protowire.AppendTag(b, fieldTimeseries, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	b = appendLabels(b, ls)
	b = protowire.AppendTag(b, fieldHistograms, protowire.BytesType)
	return protowire.AppendBytes(b, h)
}

func labelSize(l labels.Label) int {
	n := 0
	if l.Name != "" {
		n += 1 + protowire.SizeBytes(len(l.Name))
	}
	if l.Value != "" {
		n += 1 + protowire.SizeBytes(len(l.Value))
	}
	return n
}

func labelsSize(ls labels.Labels) int {
	n := 0
	ls.Range(func(l labels.Label) { n += 1 + protowire.SizeBytes(labelSize(l)) })
	return n
}

func appendLabels(b []byte, ls labels.Labels) []byte {
	ls.Range(func(l labels.Label) {
		b = protowire.AppendTag(b, fieldLabels, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(labelSize(l)))
		if l.Name != "" {
			b = protowire.AppendTag(b, fieldName, protowire.BytesType)
			b = protowire.AppendString(b, l.Name)
		}
		if l.Value != "" {
			b = protowire.AppendTag(b, fieldValue, protowire.BytesType)
			b = protowire.AppendString(b, l.Value)
		}
	})
	return b
}

// maxPooledBuf is the largest buffer kept for reuse: a rare huge scrape
// must not pin its memory.
const maxPooledBuf = 16 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func getBuf() *[]byte { b := bufPool.Get().(*[]byte); *b = (*b)[:0]; return b }

func putBuf(b *[]byte) {
	if cap(*b) <= maxPooledBuf {
		bufPool.Put(b)
	}
}
