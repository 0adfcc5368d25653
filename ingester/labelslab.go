package ingester

import (
	"github.com/prometheus/prometheus/model/labels"

	"github.com/argus-tsdb/argus/internal/slab"
)

// A read of many head series decodes a label set per series. Built one by
// one (labels.New), each is an allocation of its own; a labelSlab carves
// them from shared blocks instead, in the order they are decoded, so that a
// read of 500K series makes a few thousand allocations rather than 500K,
// and the label sets lie in memory in the order the merge and the querier
// read them. A block lives as long as any label set carved from it: at
// most labelBlockBytes, which bounds what a label set kept longer than its
// query (an alert's, say) holds.
//
// Label sets are carved in the encoding of Prometheus's default labels
// implementation (stringlabels): labelsFromEncoded, in a file built only
// with it; with another implementation (build tags slicelabels or
// dedupelabels) labelSlab.decode builds them one by one.

// labelBlockBytes is the size of a block of a labelSlab.
const labelBlockBytes = 4096

// labelSlab carves label sets from blocks of labelBlockBytes. The zero
// value is ready. Not safe for concurrent use.
type labelSlab struct {
	block []byte
}

// decode returns the symbolic labels syms of t as labels, carved from the
// slab. The caller may read syms (symbols.go).
func (sl *labelSlab) decode(t *symbolTable, syms string) labels.Labels {
	if !encodedLabels {
		return t.decode(syms)
	}
	var arr [16]labels.Label
	ls := arr[:0]
	size := 0
	t.rangeSymbols(syms, func(name, value string) bool {
		ls = append(ls, labels.Label{Name: name, Value: value})
		size += encodedLen(name) + encodedLen(value)
		return true
	})
	buf := slab.Take(&sl.block, size, labelBlockBytes)
	buf = buf[:0]
	for _, l := range ls {
		buf = appendEncoded(buf, l.Name)
		buf = appendEncoded(buf, l.Value)
	}
	return labelsFromEncoded(buf)
}

// encodedLen is the size of s in the stringlabels encoding: its length in
// one byte (up to 254) or in 255 and three bytes little-endian, then s.
func encodedLen(s string) int {
	if len(s) < 255 {
		return 1 + len(s)
	}
	return 4 + len(s)
}

// appendEncoded appends s in the stringlabels encoding to b, which has the
// capacity for it.
func appendEncoded(b []byte, s string) []byte {
	if n := len(s); n < 255 {
		b = append(b, byte(n))
	} else {
		b = append(b, 255, byte(n), byte(n>>8), byte(n>>16))
	}
	return append(b, s...)
}
