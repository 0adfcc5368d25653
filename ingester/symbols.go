package ingester

import (
	"encoding/binary"
	"math/bits"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
)

// A head stores each distinct label name and value of its series once, in
// its symbolTable, and a series keeps its label set as a string of symbol
// IDs (symbolic labels: uvarints, name then value, in label order). Label
// text is most of what a series would otherwise hold (about 100-250 bytes
// of it in a typical label set, against 10-30 bytes of IDs), and most of it
// repeats across series: names always, values such as job or namespace
// across thousands of series. The postings index keys its lists by the
// table's strings, so a string is in memory once for both.
//
// # Reuse of IDs, and who may read a series' labels
//
// A symbol is counted by the series that use it and dropped when the last
// one leaves the head, so that a head whose series churn (pods come and go)
// does not keep every value it ever saw; its ID is reused. Decoding a
// series' IDs is therefore only valid while the series is in the head:
//
//   - under its stripe lock, while the series is in the stripe's maps (the
//     lookups of a push), or under the tenant's appendMu when the series is
//     not deleted (a push logging a new series);
//   - otherwise through stripeSeries.labelsOf or rangeLabels, which decode
//     under the series' mu and report false once GC removed it (gone).
//
// GC marks a series gone under its mu, and deleted under appendMu, after
// removing it from the stripes, and only then releases its symbols.

// symbolFirstPage is the size of the first page of a symbolTable; page p
// holds symbolFirstPage << p symbols, so a tenant of a few series costs
// one small page, and a table never moves a symbol once written.
const (
	symbolFirstPage  = 16
	symbolPages      = 29 // pages 0-28 hold every uint32 ID
	symbolFirstShift = 4  // log2(symbolFirstPage)
)

// symbolTable interns the label strings of a head. Writes (intern and
// release) are serialized by mu; symbol reads take no lock and are valid
// under the rules above: an ID is read only by whoever got it, through a
// lock, from a series created after the ID was written.
type symbolTable struct {
	mu    sync.Mutex
	ids   map[string]uint32 // guarded by mu
	uses  []uint32          // guarded by mu: series (and labels of a series) using each ID
	free  []uint32          // guarded by mu: released IDs, for reuse
	next  uint32            // guarded by mu: the lowest ID never used
	pages [symbolPages][]string
}

func newSymbolTable() *symbolTable {
	return &symbolTable{ids: map[string]uint32{}}
}

// symbolSlot returns the page and offset of id.
func symbolSlot(id uint32) (page int, off uint32) {
	x := uint64(id)>>symbolFirstShift + 1
	page = bits.Len64(x) - 1
	return page, id - uint32(symbolFirstPage*(uint64(1)<<page)-symbolFirstPage)
}

// symbol returns the string of id, which the caller may read (see above).
func (t *symbolTable) symbol(id uint32) string {
	p, off := symbolSlot(id)
	return t.pages[p][off]
}

// len returns the number of symbols in use.
func (t *symbolTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.ids)
}

// encode interns the labels of lset, taking a use of each, and returns
// their IDs as symbolic labels. The strings stored are copies: lset may
// alias a request.
func (t *symbolTable) encode(lset labels.Labels) string {
	var buf [64]byte
	out := buf[:0]
	t.mu.Lock()
	lset.Range(func(l labels.Label) {
		out = binary.AppendUvarint(out, uint64(t.internLocked(l.Name)))
		out = binary.AppendUvarint(out, uint64(t.internLocked(l.Value)))
	})
	t.mu.Unlock()
	return string(out)
}

// internLocked returns the ID of s, adding s if absent, and takes a use of
// it. The caller holds mu.
func (t *symbolTable) internLocked(s string) uint32 {
	if id, ok := t.ids[s]; ok {
		t.uses[id]++
		return id
	}
	s = strings.Clone(s)
	var id uint32
	if n := len(t.free); n > 0 {
		id, t.free = t.free[n-1], t.free[:n-1]
		t.uses[id] = 1
	} else {
		id = t.next
		t.next++
		t.uses = append(t.uses, 1)
		if p, off := symbolSlot(id); off == 0 {
			t.pages[p] = make([]string, symbolFirstPage<<p)
		}
	}
	p, off := symbolSlot(id)
	t.pages[p][off] = s
	t.ids[s] = id
	return id
}

// release drops a use of each ID of the symbolic labels syms, and the
// symbols left unused. The series of syms must be unreachable by readers
// (see above).
func (t *symbolTable) release(syms string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := 0; i < len(syms); {
		v, n := uvarintString(syms[i:])
		i += n
		id := uint32(v)
		if t.uses[id]--; t.uses[id] > 0 {
			continue
		}
		p, off := symbolSlot(id)
		delete(t.ids, t.pages[p][off])
		t.pages[p][off] = ""
		t.free = append(t.free, id)
	}
}

// uvarintString is binary.Uvarint over a string, for symbolic labels.
func uvarintString(s string) (uint64, int) {
	var x uint64
	var shift uint
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b < 0x80 {
			return x | uint64(b)<<shift, i + 1
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
	panic("ingester: truncated symbolic labels") // Built by encode only: memory corruption or a bug.
}

// rangeSymbols calls f with each label of the symbolic labels syms, in
// order, until f returns false. The strings are the table's: immutable,
// and safe to keep.
func (t *symbolTable) rangeSymbols(syms string, f func(name, value string) bool) {
	for i := 0; i < len(syms); {
		n, k := uvarintString(syms[i:])
		i += k
		v, k := uvarintString(syms[i:])
		i += k
		if !f(t.symbol(uint32(n)), t.symbol(uint32(v))) {
			return
		}
	}
}

// metricName returns the value of the __name__ label of syms ("" if none):
// the table's string.
func (t *symbolTable) metricName(syms string) string {
	name := ""
	t.rangeSymbols(syms, func(n, v string) bool {
		if n == labels.MetricName {
			name = v
			return false
		}
		return n < labels.MetricName
	})
	return name
}

// decode returns syms as labels.
func (t *symbolTable) decode(syms string) labels.Labels {
	var arr [16]labels.Label
	ls := arr[:0]
	t.rangeSymbols(syms, func(name, value string) bool {
		ls = append(ls, labels.Label{Name: name, Value: value})
		return true
	})
	return labels.New(ls...) // Already sorted: New's sort is one pass.
}

// equal reports whether syms are the labels lset.
func (t *symbolTable) equal(syms string, lset labels.Labels) bool {
	i, eq := 0, true
	lset.Range(func(l labels.Label) {
		if !eq {
			return
		}
		if i >= len(syms) {
			eq = false
			return
		}
		n, k := uvarintString(syms[i:])
		i += k
		v, k := uvarintString(syms[i:])
		i += k
		eq = t.symbol(uint32(n)) == l.Name && t.symbol(uint32(v)) == l.Value
	})
	return eq && i == len(syms)
}

// labelHasher hashes label sets for the series map: xxhash over each name
// and value followed by a 0xff byte (not valid UTF-8, so no two label sets
// hash the same text). Its buffer is reused; the zero value is ready.
type labelHasher struct{ buf []byte }

func (h *labelHasher) reset() { h.buf = h.buf[:0] }

func (h *labelHasher) add(name, value string) {
	h.buf = append(h.buf, name...)
	h.buf = append(h.buf, 0xff)
	h.buf = append(h.buf, value...)
	h.buf = append(h.buf, 0xff)
}

func (h *labelHasher) sum() uint64 { return xxhash.Sum64(h.buf) }

// hashLabels returns the series map's hash of lset.
func hashLabels(lset labels.Labels) uint64 {
	var h labelHasher
	h.buf = make([]byte, 0, 256)
	lset.Range(func(l labels.Label) { h.add(l.Name, l.Value) })
	return h.sum()
}

// hashSymbols returns the series map's hash of the symbolic labels syms,
// which the caller may read.
func (t *symbolTable) hashSymbols(syms string) uint64 {
	var h labelHasher
	h.buf = make([]byte, 0, 256)
	t.rangeSymbols(syms, func(name, value string) bool {
		h.add(name, value)
		return true
	})
	return h.sum()
}
