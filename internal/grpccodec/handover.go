package grpccodec

import "github.com/argus-tsdb/argus/proto/arguspb"

// DecodeSeriesLeased decodes the series encodings series (each the bytes of
// one TimeSeries, field 1 of a WriteRequest) into m, which must be empty, as
// Codec.Unmarshal would decode a WriteRequest of exactly those series, and
// reports whether it did. It is the all-in-one distributor's hand-over to
// its own ingester: the series are read where the distributor holds them,
// with no WriteRequest encoded in between, so that the in-process push
// costs one decode into the pooled arrays instead of an encoding into a
// fresh buffer and a decode of it.
//
// It takes only series in the plain encoding (labels of a name and a value,
// samples of a value and a timestamp): for anything else (exemplars,
// histograms, an unusual encoding) it returns false having leased nothing,
// and the caller encodes the request and decodes it as before. Every
// string of m aliases series, which must stay unchanged until
// ReleaseWriteRequest(m); the series, labels and samples are in pooled
// arrays leased to m until then, as for Codec.Unmarshal.
func DecodeSeriesLeased(series [][]byte, m *arguspb.WriteRequest) bool {
	if len(series) == 0 || len(m.Timeseries) != 0 || len(m.Metadata) != 0 {
		return false
	}
	var n counts
	for _, b := range series {
		if !n.countSeries(b) {
			return false
		}
		n.series++
	}
	a := arraysPool.Get().(*requestArrays)
	a.grow(n)
	d := decoder{requestArrays: a}
	m.Timeseries = a.seriesPtrs[:n.series:n.series]
	for i, b := range series {
		d.data = b
		m.Timeseries[i] = d.decodeSeries(0, len(b))
	}
	leasesMu.Lock()
	leases[m] = lease{arrays: a}
	leasesMu.Unlock()
	return true
}
