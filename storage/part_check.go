package storage

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"go.etcd.io/bbolt"
)

// checkPart opens the part file at path and checks it (see part.Check).
func checkPart(path string) error {
	p, err := openPart(path)
	if err != nil {
		return fmt.Errorf("check part: %w", err)
	}
	return errors.Join(p.Check(), p.Close())
}

// Check verifies the part: bbolt's page consistency, and for every tenant
// that the header's counts and CRC match the index, that symbols are
// sorted, that series are in strictly increasing label order with
// well-formed labels, that the postings and the name and value lists are
// exactly the label pairs of the series, that every blob's CRC matches and
// its data is exactly the chunks that point into it, and that every chunk
// decodes to the number of samples and the time range its meta says
// (openPart has checked the meta and the headers decode). It holds a
// tenant's symbols and label pairs in memory. Problems are reported as one
// error matching ErrCorrupt.
func (p *part) Check() (err error) {
	defer func() {
		// A damaged file can make bbolt itself panic.
		if r := recover(); r != nil {
			err = fmt.Errorf("check part %s: %w", p.path, corruptf("reading the file panicked: %v", r))
		}
	}()
	var c checker
	err = p.db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			c.addf("bbolt: %v", err)
		}
		for _, tenant := range p.tenants {
			b := tx.Bucket(bucketTenants).Bucket([]byte(tenant))
			tc := &tenantChecker{checker: &c, tenant: tenant, values: map[uint32][]uint64{},
				r: &partReader{b: b, h: p.headers[tenant], syms: map[uint32]string{}}}
			tc.run()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check part %s: %w", p.path, err)
	}
	if c.total > 0 {
		return fmt.Errorf("check part %s: %w", p.path, corruptError{problems: c.problems, total: c.total})
	}
	return nil
}

// tenantChecker checks one tenant of a part.
type tenantChecker struct {
	*checker
	tenant string
	r      *partReader

	syms    []string
	pairs   [][]uint32          // label pairs of each series
	blobLen []int               // raw length of each blob
	blobUse []int               // bytes of chunks in each blob
	seen    int                 // postings entries
	values  map[uint32][]uint64 // name -> values, from the postings keys
	nPairs  int
}

func (c *tenantChecker) problemf(format string, args ...any) {
	c.addf("tenant %q: %s", c.tenant, fmt.Sprintf(format, args...))
}

func (c *tenantChecker) run() {
	h := c.r.h
	c.checkBlobs()
	c.checkSymbols()
	if uint64(len(c.syms)) != h.symbols {
		c.problemf("%d symbols, header says %d", len(c.syms), h.symbols)
		return // series would fail on every reference
	}
	c.checkSeries()
	c.checkPostings()
	c.checkLists()
	for i, n := range c.blobUse {
		if n != c.blobLen[i] {
			c.problemf("blob %d holds %d bytes but chunks use %d", i, c.blobLen[i], n)
		}
	}
	if c.seen != c.nPairs {
		c.problemf("%d postings entries for %d label pairs", c.seen, c.nPairs)
	}
	c.checkSums()
}

// checkBlobs verifies every blob's CRC and decoding.
func (c *tenantChecker) checkBlobs() {
	cur := c.r.b.Cursor()
	for k, v := cur.Seek([]byte{kindBlob}); len(k) > 0 && k[0] == kindBlob; k, v = cur.Next() {
		n := uint32(len(c.blobLen))
		if !bytes.Equal(k, appendKindKey(nil, kindBlob, n)) {
			c.problemf("blob key %x, want blob %d", k, n)
			return
		}
		raw, err := decodeBlob(v, true)
		if err != nil {
			c.problemf("blob %d: %v", n, err)
		}
		c.blobLen = append(c.blobLen, len(raw))
	}
	if uint64(len(c.blobLen)) != c.r.h.blobs {
		c.problemf("%d blobs, header says %d", len(c.blobLen), c.r.h.blobs)
	}
	c.blobUse = make([]int, len(c.blobLen))
}

// checkSymbols loads the symbols and checks their order and blocks.
func (c *tenantChecker) checkSymbols() {
	cur := c.r.b.Cursor()
	for k, v := cur.Seek([]byte{kindSymbols}); len(k) > 0 && k[0] == kindSymbols; k, v = cur.Next() {
		n := len(c.syms) / symbolsPerBlock
		if !bytes.Equal(k, appendKindKey(nil, kindSymbols, uint32(n))) || len(c.syms)%symbolsPerBlock != 0 {
			c.problemf("symbol block key %x after %d symbols", k, len(c.syms))
			return
		}
		start := len(c.syms)
		var err error
		if c.syms, err = decodeSymbolBlock(c.syms, v); err != nil {
			c.problemf("symbol block %d: %v", n, err)
			return
		}
		if len(c.syms) == start {
			c.problemf("symbol block %d is empty", n)
		}
	}
	for i := 1; i < len(c.syms); i++ {
		if c.syms[i-1] >= c.syms[i] {
			c.problemf("symbols %d and %d not in order", i-1, i)
			return
		}
	}
}

// checkSeries checks every series group, entry and chunk.
func (c *tenantChecker) checkSeries() {
	var (
		st   seriesTotals
		offs []int
		g    uint32
		cur  = c.r.b.Cursor()
	)
	st.minT, st.maxT = maxTime, minTime
	for k, v := cur.Seek([]byte{kindSeries}); len(k) > 0 && k[0] == kindSeries; k, v = cur.Next() {
		if !bytes.Equal(k, appendKindKey(nil, kindSeries, g)) || st.series != uint64(g)*seriesPerGroup {
			c.problemf("series group key %x after %d series", k, st.series)
			return
		}
		data, o, err := decodeSeriesGroup(v, offs)
		if err != nil {
			c.problemf("series group %d: %v", g, err)
			return
		}
		offs = o
		for i := 0; i+1 < len(offs); i++ {
			if !c.checkEntry(data[offs[i]:offs[i+1]], &st) {
				return
			}
		}
		g++
	}
	h := c.r.h
	if st.series != h.series || st.chunks != h.chunks || st.samples != h.samples ||
		(st.series > 0 && (st.minT != h.minT || st.maxT != h.maxT)) {
		c.problemf("%d series, %d chunks, %d samples in [%d, %d]; header says %d, %d, %d in [%d, %d]",
			st.series, st.chunks, st.samples, st.minT, st.maxT, h.series, h.chunks, h.samples, h.minT, h.maxT)
	}
}

// seriesTotals accumulates what the header of a tenant sums up.
type seriesTotals struct {
	series, chunks, samples uint64
	minT, maxT              int64
	prev                    []uint32
	e                       seriesEntry
}

// checkEntry checks the next series entry v; false stops the check.
func (c *tenantChecker) checkEntry(v []byte, st *seriesTotals) bool {
	id, e := st.series, &st.e
	if err := decodeSeriesEntry(e, v, c.r.h.minT, c.r.h.symbols); err != nil {
		c.problemf("series %d: %v", id, err)
		return false
	}
	c.checkLabels(id, e.labels, st.prev)
	st.prev = slices.Clone(e.labels)
	c.pairs = append(c.pairs, st.prev)
	c.nPairs += len(st.prev) / 2
	if err := locateChunks(e, c.blobLength); err != nil {
		c.problemf("series %d: %v", id, err)
		return false
	}
	for i := range e.chunks {
		c.checkChunk(id, &e.chunks[i], &st.samples)
		st.minT, st.maxT = min(st.minT, e.chunks[i].minT), max(st.maxT, e.chunks[i].maxT)
	}
	st.chunks += uint64(len(e.chunks))
	st.series++
	return true
}

func (c *tenantChecker) blobLength(n uint32) (int, bool, error) {
	if int(n) >= len(c.blobLen) {
		return 0, false, nil
	}
	return c.blobLen[n], true, nil
}

// checkLabels checks that the names of pairs are sorted and valid and that
// pairs sort after prev.
func (c *tenantChecker) checkLabels(id uint64, pairs, prev []uint32) {
	for i := 0; i+1 < len(pairs); i += 2 {
		name, value := c.syms[pairs[i]], c.syms[pairs[i+1]]
		if name == "" || value == "" || strings.IndexByte(name, sep) >= 0 {
			c.problemf("series %d has label %q=%q", id, name, value)
		}
		if i > 0 && pairs[i-2] >= pairs[i] {
			c.problemf("series %d has labels out of order", id)
		}
	}
	if prev != nil && comparePairs(c.syms, prev, pairs) >= 0 {
		c.problemf("series %d not after series %d in label order", id, id-1)
	}
}

// checkChunk decodes chunk m and compares it with its meta.
func (c *tenantChecker) checkChunk(id uint64, m *partChunkRef, samples *uint64) {
	c.blobUse[m.blob] += int(m.len)
	data, err := c.r.chunk(m)
	if err != nil {
		c.problemf("series %d: %v", id, err)
		return
	}
	ch, err := chunkenc.FromData(m.enc&^transcodedFlag, data)
	if err != nil || len(data) < 2 {
		c.problemf("series %d chunk [%d, %d]: %v", id, m.minT, m.maxT, err)
		return
	}
	n, first, last := 0, int64(0), int64(0)
	it := ch.Iterator(nil)
	for it.Next() != chunkenc.ValNone {
		t := it.AtT()
		if n == 0 {
			first = t
		}
		last = t
		n++
	}
	if it.Err() != nil || n != ch.NumSamples() || n == 0 || first != m.minT || last != m.maxT {
		c.problemf("series %d chunk [%d, %d] decodes to %d of %d samples in [%d, %d] (%v)",
			id, m.minT, m.maxT, n, ch.NumSamples(), first, last, it.Err())
	}
	*samples += uint64(n)
}

// checkPostings checks that every postings entry names a pair of each of
// its series.
func (c *tenantChecker) checkPostings() {
	cur := c.r.b.Cursor()
	var ids []uint64
	for k, v := cur.Seek([]byte{kindPostings}); len(k) > 0 && k[0] == kindPostings; k, v = cur.Next() {
		i := bytes.IndexByte(k, sep)
		if i <= 1 || i == len(k)-1 {
			c.problemf("malformed postings key %q", k)
			continue
		}
		name, nok := slices.BinarySearch(c.syms, string(k[1:i]))
		value, vok := slices.BinarySearch(c.syms, string(k[i+1:]))
		var err error
		if ids, err = decodePostings(ids[:0], v, uint64(len(c.pairs))); err != nil || !nok || !vok || len(ids) == 0 {
			c.problemf("postings %q: symbols found %v %v, %d ids, %v", k, nok, vok, len(ids), err)
			continue
		}
		c.values[uint32(name)] = append(c.values[uint32(name)], uint64(value))
		for _, id := range ids {
			if !hasPair(c.pairs[id], uint32(name), uint32(value)) {
				c.problemf("postings %q list series %d, which lacks that label", k, id)
			}
		}
		c.seen += len(ids)
	}
}

// checkLists checks that the names list and the values lists are those of
// the postings.
func (c *tenantChecker) checkLists() {
	var names []uint64
	for name, values := range c.values {
		names = append(names, uint64(name))
		slices.Sort(values)
		key := append(append([]byte{kindValues}, c.syms[name]...), sep)
		got, err := decodePostings(nil, c.r.b.Get(key), c.r.h.symbols)
		if err != nil || !slices.Equal(got, values) {
			c.problemf("values of %q: %d listed, %d in postings (%v)", c.syms[name], len(got), len(values), err)
		}
	}
	slices.Sort(names)
	got, err := decodePostings(nil, c.r.b.Get([]byte{kindNames}), c.r.h.symbols)
	if err != nil || !slices.Equal(got, names) {
		c.problemf("%d names listed, %d in postings (%v)", len(got), len(names), err)
	}
	n := 0
	cur := c.r.b.Cursor()
	for k, _ := cur.Seek([]byte{kindValues}); len(k) > 0 && k[0] == kindValues; k, _ = cur.Next() {
		n++
	}
	if n != len(c.values) {
		c.problemf("%d values lists for %d names", n, len(c.values))
	}
}

func hasPair(pairs []uint32, name, value uint32) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i] == name {
			return pairs[i+1] == value
		}
	}
	return false
}

// checkSums recomputes the header's CRC and byte count.
func (c *tenantChecker) checkSums() {
	hv := c.r.b.Get([]byte{kindHeader})
	_, crc, err := decodeTenantHeader(hv)
	if err != nil {
		c.problemf("%v", err)
		return
	}
	var total uint64
	cur := c.r.b.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		switch k[0] {
		case kindHeader:
			if len(k) != 1 {
				c.problemf("unknown key %q", k)
			}
			continue
		case kindNames, kindPostings, kindSymbols, kindValues, kindSeries:
			crc = crc32.Update(crc32.Update(crc, castagnoli, k), castagnoli, v)
		case kindBlob:
		default:
			c.problemf("unknown key %q", k)
		}
		total += uint64(len(k) + len(v))
	}
	if crc != c.r.h.crc {
		c.problemf("index checksum mismatch")
	}
	if total != c.r.h.bytes {
		c.problemf("%d bytes of keys and values, header says %d", total, c.r.h.bytes)
	}
}
