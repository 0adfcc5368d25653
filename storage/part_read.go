package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"go.etcd.io/bbolt"
)

// part is an open, read-only part file. All methods are safe for concurrent
// use; each runs in its own bbolt read transaction. Results are owned by the
// caller, except in Series (see partSource). Close must not run concurrently
// with other methods.
type part struct {
	path    string
	db      *bbolt.DB
	meta    partMeta
	size    int64
	tenants []string
	headers map[string]tenantHeader
	// symbols caches each tenant's decoded symbol blocks across reads
	// (tenant -> *symbolCache): a part never changes, and resolving the
	// labels of the series a read returns was a third of a scan's index
	// work and most of a point lookup's.
	symbols sync.Map
	// id identifies this open of the file in blobs' keys; blobs, if not
	// nil, serves Select's decompressed blobs (set by the DB after
	// openPart, before any read).
	id    uint64
	blobs *BlobCache
}

// symbolCacheBlocks bounds the decoded symbol blocks a part keeps per
// tenant: 32,768 symbols, a few MiB at most. Tests lower it.
var symbolCacheBlocks = 1024

// symbolCache holds decoded symbol blocks of one tenant of a part.
type symbolCache struct {
	mu     sync.Mutex
	blocks map[uint32][]string
}

func (c *symbolCache) get(n uint32) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blocks[n]
}

// full reports whether put keeps no more blocks.
func (c *symbolCache) full() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.blocks) >= symbolCacheBlocks
}

// put keeps block n, unless the cache is full: it is not evicted from,
// so that it costs no bookkeeping; the blocks read first stay.
func (c *symbolCache) put(n uint32, syms []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.blocks) < symbolCacheBlocks {
		c.blocks[n] = syms
	}
}

// symbolCacheOf returns the symbol cache of tenant.
func (p *part) symbolCacheOf(tenant string) *symbolCache {
	if c, ok := p.symbols.Load(tenant); ok {
		return c.(*symbolCache)
	}
	c, _ := p.symbols.LoadOrStore(tenant, &symbolCache{blocks: map[uint32][]string{}})
	return c.(*symbolCache)
}

// openPart opens the part file at path read-only. It fails with
// ErrUnsupportedFormat for another format and with ErrCorrupt for a file
// that is not a complete part (a write cut short has no part_meta).
func openPart(path string) (*part, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open part %s: %w", path, err)
	}
	db, err := bbolt.Open(path, fileMode, &bbolt.Options{ReadOnly: true, Timeout: openTimeout})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("open part %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open part %s: %w", path, err)
	}
	p := &part{path: path, db: db, size: st.Size(), headers: map[string]tenantHeader{}, id: partIDs.Add(1)}
	if err := db.View(p.load); err != nil {
		_ = db.Close() // the load error is the one to report
		return nil, fmt.Errorf("open part %s: %w", path, err)
	}
	return p, nil
}

// load reads the meta and the tenants' headers.
func (p *part) load(tx *bbolt.Tx) error {
	mb := tx.Bucket(bucketPartMeta)
	if mb == nil {
		return corruptf("no part meta: not a complete part")
	}
	if v := mb.Get(keyPartVersion); len(v) != 8 || binary.BigEndian.Uint64(v) != partFormatVersion {
		return fmt.Errorf("%w: part format version %x, want %d", ErrUnsupportedFormat, v, partFormatVersion)
	}
	var err error
	if p.meta, err = decodePartMeta(mb.Get(keyPartMeta)); err != nil {
		return err
	}
	tb := tx.Bucket(bucketTenants)
	if tb == nil {
		return corruptf("bucket %s missing", bucketTenants)
	}
	return tb.ForEach(func(k, v []byte) error {
		b := tb.Bucket(k)
		if v != nil || b == nil {
			return corruptf("tenant %q is not a bucket", k)
		}
		h, _, err := decodeTenantHeader(b.Get([]byte{kindHeader}))
		if err != nil {
			return fmt.Errorf("tenant %q: %w", k, err)
		}
		p.tenants = append(p.tenants, string(k))
		p.headers[string(k)] = h
		return nil
	})
}

// Meta returns the part's meta.
func (p *part) Meta() partMeta { return p.meta }

// Tenants returns the tenants of the part, sorted. The slice is shared:
// callers must not modify it.
func (p *part) Tenants() []string { return p.tenants }

// Close closes the file and drops its blobs from the cache. It is
// idempotent.
func (p *part) Close() error {
	p.blobs.dropPart(p.id)
	if err := p.db.Close(); err != nil {
		return fmt.Errorf("close part %s: %w", p.path, err)
	}
	return nil
}

// view runs fn with a reader of tenant in a read transaction; fn is not
// called if the part has no such tenant.
func (p *part) view(tenant string, fn func(r *partReader) error) error {
	h, ok := p.headers[tenant]
	if !ok {
		return nil
	}
	err := p.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketTenants).Bucket([]byte(tenant))
		if b == nil {
			return corruptf("tenant bucket missing")
		}
		ti, _ := slices.BinarySearch(p.tenants, tenant)
		return fn(&partReader{b: b, h: h, syms: map[uint32]string{}, cache: p.symbolCacheOf(tenant),
			blobKey: blobKey{part: p.id, tenant: uint32(ti)}})
	})
	if err != nil {
		return fmt.Errorf("part %s tenant %q: %w", p.path, tenant, err)
	}
	return nil
}

// partReader reads one tenant of a part in one transaction. Slices of
// bbolt's memory it returns are valid until the transaction ends.
type partReader struct {
	b     *bbolt.Bucket
	h     tenantHeader
	syms  map[uint32]string // symbol ID -> symbol, those read so far
	cache *symbolCache      // the part's decoded blocks of the tenant

	group     []byte // decoded series group groupNo, nil if none
	groupOffs []int  // offsets of the entries in group, and its end
	groupNo   uint32
	blobNo    uint32
	blob      []byte // raw data of blob blobNo, nil if none loaded
	// blobBuf, if not nil, is reused for every decompressed blob: set by
	// readers that copy what they keep of a blob before loading the next.
	blobBuf []byte
	// blobs, if not nil, is where compressed blobs are looked up and kept
	// once decompressed (blobBuf is then used only for what it does not
	// keep); blobKey is the key of blob 0 of the reader's part and tenant.
	blobs   *BlobCache
	blobKey blobKey
	xor     xorScratch
	key     []byte // scratch
}

// symbol returns the string of symbol id. The reader caches symbols one
// by one; a miss takes the symbol's block from the part's cache, or
// decodes it whole into the cache.
func (r *partReader) symbol(id uint32) (string, error) {
	if s, ok := r.syms[id]; ok {
		return s, nil
	}
	n, i := id/symbolsPerBlock, int(id%symbolsPerBlock)
	block := r.cache.get(n)
	if block == nil {
		v := r.b.Get(appendKindKey(r.key[:0], kindSymbols, n))
		if v == nil {
			return "", corruptf("symbol block %d missing", n)
		}
		var err error
		if block, err = decodeSymbolBlock(nil, v); err != nil {
			return "", fmt.Errorf("symbol %d: %w", id, err)
		}
		r.cache.put(n, block)
	}
	if i >= len(block) {
		return "", corruptf("symbol %d of a block of %d", i, len(block))
	}
	r.syms[id] = block[i]
	return block[i], nil
}

// entry returns the raw value of series id, valid until the next call.
// Consecutive IDs share their group's B+tree search and decoding.
func (r *partReader) entry(id uint64) ([]byte, error) {
	if id >= r.h.series {
		return nil, corruptf("series %d of %d", id, r.h.series)
	}
	g := uint32(id / seriesPerGroup)
	if r.group == nil || r.groupNo != g {
		v := r.b.Get(appendKindKey(r.key[:0], kindSeries, g))
		if v == nil {
			return nil, corruptf("series group %d missing", g)
		}
		data, offs, err := r.seriesGroup(g, v)
		if err != nil {
			return nil, fmt.Errorf("series group %d: %w", g, err)
		}
		r.group, r.groupOffs, r.groupNo = data, offs, g
	}
	i := int(id % seriesPerGroup)
	if i+1 >= len(r.groupOffs) {
		return nil, corruptf("series %d missing from its group", id)
	}
	return r.group[r.groupOffs[i]:r.groupOffs[i+1]], nil
}

// seriesGroup decodes series group g, stored as v, through the blob cache
// if the reader has one and v is compressed.
func (r *partReader) seriesGroup(g uint32, v []byte) ([]byte, []int, error) {
	if r.blobs == nil || len(v) == 0 || v[0] == codecRaw {
		return decodeSeriesGroup(v, r.groupOffs)
	}
	k := r.blobKey
	k.kind, k.blob = kindSeries, g
	data, ok := r.blobs.get(k)
	if !ok {
		var err error
		if data, err = decompressSeriesGroup(v); err != nil {
			return nil, r.groupOffs, err
		}
		r.blobs.put(k, data)
	}
	return parseSeriesGroup(data, r.groupOffs)
}

// series decodes series id into e, chunk locations resolved.
func (r *partReader) series(id uint64, e *seriesEntry) error {
	v, err := r.entry(id)
	if err != nil {
		return err
	}
	if err := decodeSeriesEntry(e, v, r.h.minT, r.h.symbols); err != nil {
		return fmt.Errorf("series %d: %w", id, err)
	}
	if err := locateChunks(e, r.blobLen); err != nil {
		return fmt.Errorf("series %d: %w", id, err)
	}
	return nil
}

// blobLen returns the raw length of blob n, and false if there is none.
func (r *partReader) blobLen(n uint32) (int, bool, error) {
	if r.blob != nil && r.blobNo == n {
		return len(r.blob), true, nil
	}
	if uint64(n) >= r.h.blobs {
		return 0, false, nil
	}
	l, err := blobRawLen(r.b.Get(appendKindKey(r.key[:0], kindBlob, n)))
	if err != nil {
		return 0, false, fmt.Errorf("blob %d: %w", n, err)
	}
	return l, true, nil
}

// chunkData returns the data of chunk c. It aliases bbolt's memory or a
// decompressed blob; the blob of the previous call stays valid as long as
// the caller holds it.
func (r *partReader) chunkData(c *partChunkRef) ([]byte, error) {
	if r.blob == nil || r.blobNo != c.blob {
		raw, err := r.loadBlob(c.blob)
		if err != nil {
			return nil, fmt.Errorf("blob %d: %w", c.blob, err)
		}
		r.blob, r.blobNo = raw, c.blob
	}
	end := uint64(c.off) + uint64(c.len)
	if end > uint64(len(r.blob)) {
		return nil, corruptf("chunk at blob %d offset %d beyond its end", c.blob, c.off)
	}
	return r.blob[c.off:end], nil
}

// loadBlob returns the raw data of blob n: from the blob cache if the
// reader has one and holds it, else decompressed (into blobBuf if the
// reader reuses one and the cache does not take the result) or aliasing
// bbolt's memory if stored raw. The result is read-only.
func (r *partReader) loadBlob(n uint32) ([]byte, error) {
	k := r.blobKey
	k.kind, k.blob = kindBlob, n
	if r.blobs != nil {
		if raw, ok := r.blobs.get(k); ok {
			return raw, nil
		}
	}
	v := r.b.Get(appendKindKey(r.key[:0], kindBlob, n))
	buf := r.blobBuf
	if r.blobs != nil {
		buf = nil // a buffer of its own, which the cache may keep
	}
	raw, err := decodeBlobInto(v, false, buf)
	if err != nil || v[0] == codecRaw {
		return raw, err
	}
	if r.blobs != nil {
		r.blobs.put(k, raw)
	} else if r.blobBuf != nil {
		r.blobBuf = raw
	}
	return raw, nil
}

// chunk returns the data of chunk c as handed out (rebuilt as XOR if it is
// transcoded). It is valid until the next call, or as chunkData's.
func (r *partReader) chunk(c *partChunkRef) ([]byte, error) {
	data, err := r.chunkData(c)
	if err != nil || c.enc&transcodedFlag == 0 {
		return data, err
	}
	out, ok := r.xor.untranscode(data)
	if !ok || c.enc&^transcodedFlag != chunkenc.EncXOR {
		return nil, corruptf("transcoded chunk at blob %d offset %d does not decode", c.blob, c.off)
	}
	return out, nil
}

// selected returns chunk c as Select hands it out, its data copied to a:
// rebuilt as XOR if it is transcoded, unless keep.
func (r *partReader) selected(c *partChunkRef, keep bool, a *arena) (Chunk, error) {
	if keep && c.enc == EncTranscodedXOR {
		data, err := r.chunkData(c)
		if err != nil {
			return Chunk{}, err
		}
		return Chunk{MinTime: c.minT, MaxTime: c.maxT, Encoding: EncTranscodedXOR, Data: a.copy(data)}, nil
	}
	data, err := r.chunk(c)
	if err != nil {
		return Chunk{}, err
	}
	return Chunk{MinTime: c.minT, MaxTime: c.maxT, Encoding: c.enc &^ transcodedFlag, Data: a.copy(data)}, nil
}

// cachedXOR returns the chunks of series e, which all lie in the range
// read, as Select hands them out for the wire (transcoded ones rebuilt as
// XOR), their data copied to a: from the blob cache if it holds them, else
// read, rebuilt and kept there. A repeated read neither loads blobs nor
// rebuilds. The entry is per series, not per chunk, so that a read of
// thousands of series over a day does a lookup per series rather than per
// chunk, and its overhead is small beside the data: each chunk is its
// encoding byte, the uvarint length of its data, then the data.
func (r *partReader) cachedXOR(e *seriesEntry, a *arena) ([]Chunk, error) {
	k := r.blobKey
	k.kind, k.blob, k.off = kindXORSeries, e.chunks[0].blob, e.chunks[0].off
	entry, ok := r.blobs.get(k)
	if !ok {
		for i := range e.chunks {
			c := &e.chunks[i]
			data, err := r.chunk(c)
			if err != nil {
				return nil, err
			}
			entry = append(entry, byte(c.enc&^transcodedFlag))
			entry = binary.AppendUvarint(entry, uint64(len(data)))
			entry = append(entry, data...)
		}
		r.blobs.put(k, entry)
	}
	d := partDecoder{b: a.copy(entry)}
	chunks := make([]Chunk, len(e.chunks))
	for i := range e.chunks {
		c := &e.chunks[i]
		enc := chunkenc.Encoding(d.byte())
		n := d.uvarintMax(uint64(len(d.b)))
		if d.err != nil {
			return nil, corruptf("cached chunks of a series do not decode")
		}
		chunks[i] = Chunk{MinTime: c.minT, MaxTime: c.maxT, Encoding: enc, Data: d.b[:n:n]}
		d.b = d.b[n:]
	}
	return chunks, nil
}

// wholeInRange reports whether every chunk of cs lies in [mint, maxt]:
// the chunks are in time order.
func wholeInRange(cs []partChunkRef, mint, maxt int64) bool {
	return len(cs) > 0 && cs[0].minT >= mint && cs[len(cs)-1].maxT <= maxt
}

// labels builds the label set of e with b; the strings are shared with
// later calls of the reader but never alias bbolt's memory.
func (r *partReader) labels(e *seriesEntry, b *labels.ScratchBuilder) (labels.Labels, error) {
	b.Reset()
	for i := 0; i+1 < len(e.labels); i += 2 {
		name, err := r.symbol(e.labels[i])
		if err != nil {
			return labels.EmptyLabels(), err
		}
		value, err := r.symbol(e.labels[i+1])
		if err != nil {
			return labels.EmptyLabels(), err
		}
		b.Add(name, value)
	}
	return b.Labels(), nil
}

// Series calls fn with every series of tenant in label order, with all its
// chunks. The chunk data alias the part's memory and are valid until fn
// returns; the labels are owned by fn.
func (p *part) Series(tenant string, fn func(Series) error) error {
	return p.view(tenant, func(r *partReader) error {
		var (
			e  seriesEntry
			lb = labels.NewScratchBuilder(16)
		)
		for id := range r.h.series {
			if err := r.series(id, &e); err != nil {
				return err
			}
			lbls, err := r.labels(&e, &lb)
			if err != nil {
				return err
			}
			chunks := make([]Chunk, len(e.chunks))
			for i := range e.chunks {
				c := &e.chunks[i]
				data, err := r.chunk(c)
				if err != nil {
					return err
				}
				if c.enc&transcodedFlag != 0 {
					data = bytes.Clone(data) // the next chunk reuses the buffer
				}
				chunks[i] = Chunk{MinTime: c.minT, MaxTime: c.maxT, Encoding: c.enc &^ transcodedFlag, Data: data}
			}
			if err := fn(Series{Labels: lbls, Chunks: chunks}); err != nil {
				return err
			}
		}
		return nil
	})
}

// Select returns, sorted by labels, the series of tenant that match all
// matchers and have a chunk overlapping [mint, maxt], with those chunks. No
// matchers select every series. The result is owned by the caller.
func (p *part) Select(tenant string, mint, maxt int64, opts SelectOptions, ms []*labels.Matcher) ([]Series, error) {
	var out []Series
	err := p.view(tenant, func(r *partReader) error {
		if mint > maxt || r.h.maxT < mint || r.h.minT > maxt {
			return nil
		}
		ids, all, err := r.postingsForMatchers(ms)
		if err != nil {
			return err
		}
		var (
			a  arena
			e  seriesEntry
			lb = labels.NewScratchBuilder(16)
		)
		r.blobBuf = []byte{} // Chunk data are copied to a before the next blob.
		r.blobs = p.blobs
		return forIDs(ids, all, r.h.series, func(id uint64) error {
			if err := r.series(id, &e); err != nil {
				return err
			}
			var chunks []Chunk
			found := false
			if !opts.SkipChunks && !opts.KeepTranscoded && r.blobs != nil && wholeInRange(e.chunks, mint, maxt) {
				if chunks, err = r.cachedXOR(&e, &a); err != nil {
					return err
				}
				found = true
				e.chunks = e.chunks[:0] // all taken
			}
			for i := range e.chunks {
				c := &e.chunks[i]
				if c.maxT < mint || c.minT > maxt {
					continue
				}
				found = true
				if opts.SkipChunks {
					break
				}
				ch, err := r.selected(c, opts.KeepTranscoded, &a)
				if err != nil {
					return err
				}
				chunks = append(chunks, ch)
			}
			if !found {
				return nil
			}
			lbls, err := r.labels(&e, &lb)
			if err != nil {
				return err
			}
			out = append(out, Series{Labels: lbls, Chunks: chunks})
			return nil
		})
	})
	return out, err
}

// forIDs calls fn with each of ids in order, or with 0 to n-1 if all.
func forIDs(ids []uint64, all bool, n uint64, fn func(uint64) error) error {
	if all {
		for id := range n {
			if err := fn(id); err != nil {
				return err
			}
		}
		return nil
	}
	for _, id := range ids {
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}

// LabelNames returns the sorted label names of tenant's series that match
// all matchers. Without matchers it reads only postings keys, one seek per
// name.
func (p *part) LabelNames(tenant string, ms []*labels.Matcher) ([]string, error) {
	var names []string
	err := p.view(tenant, func(r *partReader) error {
		ids, all, err := r.postingsForMatchers(ms)
		if err != nil {
			return err
		}
		if all {
			names, err = r.symbolList([]byte{kindNames})
			return err
		}
		seen := map[uint32]struct{}{}
		var e seriesEntry
		for _, id := range ids {
			v, err := r.entry(id)
			if err == nil {
				err = decodeSeriesEntry(&e, v, r.h.minT, r.h.symbols)
			}
			if err != nil {
				return err
			}
			for i := 0; i < len(e.labels); i += 2 {
				if _, ok := seen[e.labels[i]]; ok {
					continue
				}
				seen[e.labels[i]] = struct{}{}
				name, err := r.symbol(e.labels[i])
				if err != nil {
					return err
				}
				names = append(names, name)
			}
		}
		return nil
	})
	slices.Sort(names)
	return names, err
}

// symbolList returns the symbols of the symbol ID list under key, in order,
// decoding each symbol block once.
func (r *partReader) symbolList(key []byte) ([]string, error) {
	v := r.b.Get(key)
	if v == nil {
		return nil, nil
	}
	ids, err := decodePostings(nil, v, r.h.symbols)
	if err != nil {
		return nil, fmt.Errorf("symbol list %q: %w", key, err)
	}
	out := make([]string, 0, len(ids))
	var (
		block []string
		a     arena // the strings' bytes; never written again once handed out
	)
	for i := 0; i < len(ids); {
		n := ids[i] / symbolsPerBlock
		j := i + 1
		for j < len(ids) && ids[j]/symbolsPerBlock == n {
			j++
		}
		if j-i < symbolsPerBlock/8 {
			// Few symbols of this block: decode up to each alone.
			for _, id := range ids[i:j] {
				s, err := r.symbol(uint32(id))
				if err != nil {
					return nil, err
				}
				out = append(out, s)
			}
			i = j
			continue
		}
		if block, err = decodeSymbolBlockIn(&a, block[:0], r.b.Get(appendKindKey(r.key[:0], kindSymbols, uint32(n)))); err != nil {
			return nil, fmt.Errorf("symbol block %d: %w", n, err)
		}
		for _, id := range ids[i:j] {
			k := int(id % symbolsPerBlock)
			if k >= len(block) {
				return nil, corruptf("symbol %d missing", id)
			}
			out = append(out, block[k])
		}
		i = j
	}
	return out, nil
}

// LabelValues returns the sorted values of label name over tenant's series
// that match all matchers. It never returns "".
func (p *part) LabelValues(tenant, name string, ms []*labels.Matcher) ([]string, error) {
	var values []string
	err := p.view(tenant, func(r *partReader) error {
		if name == "" || strings.IndexByte(name, sep) >= 0 {
			return nil
		}
		ids, all, err := r.postingsForMatchers(ms)
		if err != nil || (!all && len(ids) == 0) {
			return err
		}
		if all {
			values, err = r.symbolList(append(append([]byte{kindValues}, name...), sep))
			return err
		}
		if len(ids) <= labelValuesBySeries {
			values, err = r.labelValuesOf(name, ids)
			return err
		}
		values, err = r.labelValuesScan(name, ids, all)
		return err
	})
	return values, err
}

// labelValuesBySeries is the number of matching series up to which
// LabelValues reads their entries rather than the postings of every value.
// Tests change it.
var labelValuesBySeries = 512

// labelValuesScan walks the postings keys of name, keeping the values whose
// postings meet sorted ids (any, if all).
func (r *partReader) labelValuesScan(name string, ids []uint64, all bool) ([]string, error) {
	var (
		values []string
		list   []uint64
		err    error
	)
	prefix := appendPostingsKey(nil, name, "")
	c := r.b.Cursor()
	for k, v := c.Seek(prefix); bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if !all {
			if list, err = decodePostings(list[:0], v, r.h.series); err != nil {
				return nil, err
			}
			if !meets(ids, list) {
				continue
			}
		}
		values = append(values, string(k[len(prefix):]))
	}
	return values, nil
}

// meets reports whether sorted a and b have an element in common.
func meets(a, b []uint64) bool {
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i = i + sort.Search(len(a)-i, func(x int) bool { return a[i+x] >= b[j] })
		case a[i] > b[j]:
			j = j + sort.Search(len(b)-j, func(x int) bool { return b[j+x] >= a[i] })
		default:
			return true
		}
	}
	return false
}

// labelValuesOf returns the sorted values of name of the series ids.
func (r *partReader) labelValuesOf(name string, ids []uint64) ([]string, error) {
	var (
		values []string
		e      seriesEntry
		seen   = map[uint32]struct{}{}
	)
	for _, id := range ids {
		v, err := r.entry(id)
		if err == nil {
			err = decodeSeriesEntry(&e, v, r.h.minT, r.h.symbols)
		}
		if err != nil {
			return nil, err
		}
		for i := 0; i < len(e.labels); i += 2 {
			n, err := r.symbol(e.labels[i])
			if err != nil {
				return nil, err
			}
			if n != name {
				continue
			}
			if _, ok := seen[e.labels[i+1]]; !ok {
				seen[e.labels[i+1]] = struct{}{}
				value, err := r.symbol(e.labels[i+1])
				if err != nil {
					return nil, err
				}
				values = append(values, value)
			}
			break
		}
	}
	slices.Sort(values)
	return values, nil
}

// LastTime returns the MaxTime of the last chunk of series lbls of tenant,
// and false if the part does not hold it. Series IDs are in label order, so
// it is a binary search over the series entries.
func (p *part) LastTime(tenant string, lbls labels.Labels) (int64, bool, error) {
	var (
		maxT  int64
		found bool
	)
	b := labels.NewScratchBuilder(lbls.Len())
	lbls.Range(func(l labels.Label) {
		if l.Value != "" { // not stored
			b.Add(l.Name, l.Value)
		}
	})
	want := b.Labels()
	err := p.view(tenant, func(r *partReader) error {
		// Through the blob cache: a flush that overlaps the part (after an
		// early seal) looks up every series it writes, and each binary
		// search decoded about 12 compressed series groups, the same top
		// ones every time (in one profile of BenchmarkIngestCPU, 40% of the
		// process's CPU).
		r.blobs = p.blobs
		var (
			e    seriesEntry
			lb   = labels.NewScratchBuilder(16)
			ferr error
		)
		i := sort.Search(int(r.h.series), func(i int) bool {
			if ferr != nil {
				return true
			}
			v, err := r.entry(uint64(i))
			if err == nil {
				err = decodeSeriesEntry(&e, v, r.h.minT, r.h.symbols)
			}
			var got labels.Labels
			if err == nil {
				got, err = r.labels(&e, &lb)
			}
			if err != nil {
				ferr = err
				return true
			}
			return labels.Compare(got, want) >= 0
		})
		if ferr != nil || i == int(r.h.series) {
			return ferr
		}
		if err := r.series(uint64(i), &e); err != nil {
			return err
		}
		got, err := r.labels(&e, &lb)
		if err != nil || labels.Compare(got, want) != 0 {
			return err
		}
		maxT, found = e.chunks[len(e.chunks)-1].maxT, true
		return nil
	})
	return maxT, found, err
}

// newerThanTenant reports whether t is after every chunk of tenant in
// the part (true if the part does not hold the tenant), from its header.
func (p *part) newerThanTenant(tenant string, t int64) bool {
	h, ok := p.headers[tenant]
	return !ok || t > h.maxT
}

// Stats returns tenant's share of the part (zero counts if it has none).
// Bytes counts the tenant's keys and values; Tombstones is left to the DB.
func (p *part) Stats(tenant string) (TenantPartitionStats, error) {
	st := TenantPartitionStats{Partition: PartitionInfo{
		Path: p.path, MinTime: p.meta.MinTime, MaxTime: p.meta.MaxTime,
		Level: p.meta.Level, Bytes: p.size, Tenants: len(p.tenants),
	}}
	h, ok := p.headers[tenant]
	if !ok {
		return st, nil
	}
	st.Series, st.Chunks, st.Samples = int64(h.series), int64(h.chunks), int64(h.samples)
	st.Bytes, st.MinTime, st.MaxTime = int64(h.bytes), h.minT, h.maxT
	return st, nil
}
