package storage

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
)

// LastTimes does LastTime for every series of a batch in one read: out[i]
// and found[i] are set to what LastTime(tenant, series[i]) returns. out and
// found must be as long as series; they are owned by the caller, series is
// only read. Safe for concurrent use.
//
// Why: a flush into a window with parts looks up every series it writes
// (DB.precheck), and each LastTime was a binary search of its own, about 12
// series groups decoded and a label set built per probe (~0.3 ms per series
// in a profile of BenchmarkIngestCPU). Series IDs are in label order, so
// the batch is sorted the same way and the part's series are walked once
// in step with it: each search starts where the previous one stopped.
func (p *part) LastTimes(tenant string, series []labels.Labels, out []int64, found []bool) error {
	if len(out) != len(series) || len(found) != len(series) {
		return fmt.Errorf("last times: %d series, %d times, %d flags", len(series), len(out), len(found))
	}
	clear(out)
	clear(found)
	if _, ok := p.headers[tenant]; !ok || len(series) == 0 {
		return nil
	}
	w := newLastTimesBatch(series)
	return p.view(tenant, func(r *partReader) error {
		r.blobs = p.blobs // as LastTime: a burst of flushes walks the same groups
		s := partSeeker{r: r, n: int(r.h.series)}
		pos, prev := 0, -1
		for _, i := range w.order {
			want := w.want(i)
			if prev >= 0 && slices.Equal(want, w.want(prev)) {
				out[i], found[i], prev = out[prev], found[prev], i
				continue
			}
			prev = i
			var err error
			if pos, err = s.lowerBound(pos, want); err != nil {
				return err
			}
			if pos == s.n {
				return nil // every later series sorts after the part's last
			}
			if out[i], found[i], err = s.lastTimeAt(pos, want); err != nil {
				return err
			}
		}
		return nil
	})
}

// lastTimesBatch is a batch of label sets, each flattened to name, value,
// name, value... without the empty values (a part does not store them),
// and the order that sorts them as labels.Compare does.
type lastTimesBatch struct {
	flat  []string
	offs  []int // want(i) is flat[offs[i]:offs[i+1]]
	order []int
}

func newLastTimesBatch(series []labels.Labels) *lastTimesBatch {
	n := 0
	for _, lbls := range series {
		n += 2 * lbls.Len()
	}
	w := &lastTimesBatch{flat: make([]string, 0, n), offs: make([]int, 1, len(series)+1), order: make([]int, len(series))}
	for i, lbls := range series {
		lbls.Range(func(l labels.Label) {
			if l.Value != "" {
				w.flat = append(w.flat, l.Name, l.Value)
			}
		})
		w.offs = append(w.offs, len(w.flat))
		w.order[i] = i
	}
	// Flushes come in the head's order, often sorted already; the stable
	// sort keeps duplicates in batch order (any order would do).
	cmp := func(a, b int) int { return compareFlat(w.want(a), w.want(b)) }
	if !slices.IsSortedFunc(w.order, cmp) {
		slices.SortStableFunc(w.order, cmp)
	}
	return w
}

func (w *lastTimesBatch) want(i int) []string { return w.flat[w.offs[i]:w.offs[i+1]] }

// compareFlat compares two flattened label sets as labels.Compare compares
// the label sets (names and values pair by pair, then the number of labels).
func compareFlat(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := strings.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

// partSeeker finds flattened label sets among the series of one reader.
type partSeeker struct {
	r     *partReader
	n     int // series in the part
	e     seriesEntry
	want  []string
	known []symbolBounds // per string of want
	// block is symbol block blockNo (if haveBlock) decoded without an
	// allocation per symbol: symbol j is block[offs[j]:offs[j+1]]. Used once
	// the part's symbol cache is full.
	block     []byte
	offs      []int
	scratch   []byte // rangeSymbolBlock's
	blockNo   uint32
	haveBlock bool
}

// symbolBounds is what the probes so far tell of where a string falls in
// the part's symbols, which are sorted (symbol IDs in string order): ID eq
// is the string, IDs up to lt sort before it, IDs from gt after it.
type symbolBounds struct{ eq, lt, gt int64 }

// setWant makes want the label set compare compares with. The bounds of a
// string equal to the previous want's at the same place are kept: a
// batch's neighbours share most of their labels.
func (s *partSeeker) setWant(want []string) {
	for k, str := range want {
		if k < len(s.known) && k < len(s.want) && s.want[k] == str {
			continue
		}
		if k >= len(s.known) {
			s.known = append(s.known, symbolBounds{})
		}
		s.known[k] = symbolBounds{eq: -1, lt: -1, gt: math.MaxInt64}
	}
	s.want = want
}

// compare compares the labels of series id with want (setWant) as
// labels.Compare does. Symbols are resolved only up to the first
// difference, and only where the bounds of earlier probes do not decide
// (most probes compare symbol IDs alone): no label set is built per probe.
func (s *partSeeker) compare(id int) (int, error) {
	v, err := s.r.entry(uint64(id))
	if err != nil {
		return 0, err
	}
	if err := decodeSeriesEntry(&s.e, v, s.r.h.minT, s.r.h.symbols); err != nil {
		return 0, fmt.Errorf("series %d: %w", id, err)
	}
	for k := 0; k < len(s.e.labels) && k < len(s.want); k++ {
		c, err := s.compareSymbol(s.e.labels[k], k)
		if err != nil || c != 0 {
			return c, err
		}
	}
	return len(s.e.labels) - len(s.want), nil
}

// compareSymbol compares symbol sym with want[k].
func (s *partSeeker) compareSymbol(sym uint32, k int) (int, error) {
	b, id := &s.known[k], int64(sym)
	switch {
	case id == b.eq:
		return 0, nil
	case id <= b.lt:
		return -1, nil
	case id >= b.gt:
		return 1, nil
	}
	str, err := s.symbol(sym)
	if err != nil {
		return 0, err
	}
	c := strings.Compare(str, s.want[k])
	switch {
	case c == 0:
		b.eq = id
	case c < 0:
		b.lt = id
	default:
		b.gt = id
	}
	return c, nil
}

// symbol returns symbol sym, valid until the next call. While the part's
// symbol cache has room it reads through it (partReader.symbol); past
// that, a probe's deciding symbol is usually one no probe needed before,
// and decoding its block into new strings was most of a batch's
// allocations, so the block is decoded into the seeker's buffer.
func (s *partSeeker) symbol(sym uint32) (string, error) {
	if str, ok := s.r.syms[sym]; ok {
		return str, nil
	}
	n, i := sym/symbolsPerBlock, int(sym%symbolsPerBlock)
	if !s.haveBlock || s.blockNo != n {
		if !s.r.cache.full() {
			return s.r.symbol(sym)
		}
		if block := s.r.cache.get(n); block != nil {
			if i >= len(block) {
				return "", corruptf("symbol %d of a block of %d", i, len(block))
			}
			return block[i], nil
		}
		v := s.r.b.Get(appendKindKey(s.r.key[:0], kindSymbols, n))
		if v == nil {
			return "", corruptf("symbol block %d missing", n)
		}
		s.haveBlock = false
		if err := s.decodeBlock(v); err != nil {
			return "", fmt.Errorf("symbol %d: %w", sym, err)
		}
		s.blockNo, s.haveBlock = n, true
	}
	if i+1 >= len(s.offs) {
		return "", corruptf("symbol %d of a block of %d", i, len(s.offs)-1)
	}
	return yoloString(s.block[s.offs[i]:s.offs[i+1]]), nil
}

// decodeBlock decodes symbol block v into s.block and s.offs.
func (s *partSeeker) decodeBlock(v []byte) error {
	s.block, s.offs = s.block[:0], append(s.offs[:0], 0)
	var err error
	s.scratch, err = rangeSymbolBlock(v, s.scratch, func(sym []byte) {
		s.block = append(s.block, sym...)
		s.offs = append(s.offs, len(s.block))
	})
	return err
}

// lowerBound returns the first series at or after from whose labels are
// not before want (s.n if none): it gallops forward from from, doubling
// the step, then binary-searches the last step, so that a batch's
// neighbouring series cost a few probes in the groups already decoded.
func (s *partSeeker) lowerBound(from int, want []string) (int, error) {
	s.setWant(want)
	var ferr error
	atOrAfter := func(id int) bool {
		if ferr != nil {
			return true
		}
		c, err := s.compare(id)
		ferr = err
		return err != nil || c >= 0
	}
	if from >= s.n || atOrAfter(from) {
		return from, ferr
	}
	lo, hi := from, s.n // series lo is before want; the answer is in (lo, hi]
	for step := 1; ; step *= 2 {
		if lo+step >= s.n {
			break
		}
		if atOrAfter(lo + step) {
			hi = lo + step
			break
		}
		lo += step
	}
	i := lo + 1 + sort.Search(hi-lo-1, func(j int) bool { return atOrAfter(lo + 1 + j) })
	return i, ferr
}

// lastTimeAt returns the MaxTime of the last chunk of series id, and false
// if its labels are not want. Like LastTime, it resolves the series'
// chunks (locateChunks), so that a damaged entry fails the same way.
func (s *partSeeker) lastTimeAt(id int, want []string) (int64, bool, error) {
	s.setWant(want)
	if c, err := s.compare(id); err != nil || c != 0 {
		return 0, false, err
	}
	if err := s.r.series(uint64(id), &s.e); err != nil {
		return 0, false, err
	}
	return s.e.chunks[len(s.e.chunks)-1].maxT, true, nil
}
