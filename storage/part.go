package storage

// A part is one immutable, sealed partition file: the chunks of any number
// of tenants over one time range, with a per-tenant index, written once by
// writePart and then only read. DB creates parts by sealing and compacting
// partitions and drops old data by deleting part files.
//
// # Part file layout (part format version 1)
//
// A part is a bbolt file. Its top-level buckets are
//
//	part_meta   "version" -> uint64(1) big-endian
//	            "meta"    -> varint(MinTime) varint(MaxTime) uvarint(Level)
//	                         uvarint(len(Sources)) {uvarint(len) bytes}...
//	                         crc32c(4) of the bytes before
//	tenants     tenant name -> nested bucket of that tenant (below)
//
// part_meta is written by the last transaction, so a file that a crash cut
// short has none and openPart refuses it; writePart also writes to a ".tmp"
// name and renames only a complete, fsynced file.
//
// The bucket of a tenant holds one B+tree whose keys start with a kind
// byte, all written in key order with FillPercent 1.0 so that every page is
// full:
//
//	'B' be32(n)                  blob n: chunk data, in series order
//	'h'                          header
//	'n'                          label names: symbol ID list
//	'p' name 0xff value          postings of the label pair name=value
//	's' be32(n)                  symbol block n
//	'v' name 0xff                values of label name: symbol ID list
//	'x' be32(n)                  series group n: series 64n to 64n+63
//
// Symbols are the distinct label names and values of the tenant, sorted, so
// that symbol IDs compare as the strings do. Block n holds symbols 32n to
// 32n+31, front-coded: uvarint(count), then per symbol uvarint(length of the
// prefix shared with the previous symbol of the block) uvarint(length of the
// rest) rest.
//
// Series IDs are dense, 0 to series-1, assigned in label order, so that a
// sorted list of IDs is a sorted list of series and reading series in ID
// order is a sequential scan of 'x' keys, one B+tree search per 64 series.
// A series group is codec(1) (0 raw, 1 zstd, as blobs) then, compressed or
// not, uvarint(entries) {uvarint(len(entry))}... entries. A series entry is
//
//	uvarint(labels) {uvarint(name symbol) uvarint(value symbol)}...
//	uvarint(chunks) uvarint(blob) uvarint(offset)
//	{delta uvarint(MaxTime-MinTime) encoding(1) uvarint(len(data))}...
//
// where blob and offset locate the data of the first chunk and delta is
// uvarint(MinTime - header MinTime) for the first chunk and
// uvarint(MinTime - previous MaxTime - 1) for the next ones (chunks of a
// series never overlap). The data of a series' chunks follow each other in
// the blobs; a chunk never spans two blobs: when it does not fit at the
// current offset (offset+len > blob length) it is at offset 0 of the next
// blob.
//
// A postings value is uvarint(count) uvarint(first id) {uvarint(id - previous
// id - 1)}...; a symbol ID list is encoded the same way. Values of one name
// are contiguous postings keys in byte order, so label values under
// matchers are one key scan; without matchers LabelNames and LabelValues
// read one symbol ID list each ('n', 'v'). Labels with an empty value are not
// stored.
//
// A blob value is codec(1) crc32c(4) uvarint(raw length) payload, where the
// CRC (Castagnoli) covers everything after itself and the payload is the raw
// chunk data (codec 0) or its zstd (1) or S2 (2) compression. Blobs hold
// about partBlobTarget raw bytes; reads of consecutive series decode each
// blob once.
//
// The header is uvarint(series) uvarint(chunks) uvarint(samples)
// varint(MinTime) varint(MaxTime) uvarint(symbols) uvarint(blobs)
// uvarint(bytes) crc32c(4), where bytes counts the tenant's keys and values
// and the CRC covers the header fields before it and every key and value of
// the index ('n' to 'x') in order, so that Check finds any change to it.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"go.etcd.io/bbolt"
)

// partFormatVersion is the part format written by this package.
const partFormatVersion = 1

// Part bucket, key and key kind names. See the top of this file.
var (
	bucketPartMeta = []byte("part_meta")
	bucketTenants  = []byte("tenants")
	keyPartVersion = []byte("version")
	keyPartMeta    = []byte("meta")
)

const (
	kindBlob     = 'B'
	kindHeader   = 'h'
	kindNames    = 'n'
	kindPostings = 'p'
	kindSymbols  = 's'
	kindValues   = 'v'
	kindSeries   = 'x'

	// symbolsPerBlock is the number of symbols in a symbol block.
	symbolsPerBlock = 32
	// seriesPerGroup is the number of series entries in a series group.
	seriesPerGroup = 64
)

// partBlobTarget is the raw size a blob is cut at: large enough that
// compression finds repetition and a scan does few lookups, small enough that
// selecting one series decodes little. Tests lower it.
var partBlobTarget = 256 << 10

// partCommitBytes is how many blob bytes one write transaction holds
// before it commits, bounding the writer's memory. Tests lower it.
var partCommitBytes = 32 << 20

// partMeta describes a part file.
type partMeta struct {
	MinTime, MaxTime int64
	Level            int
	Sources          []string // file names this part replaces
}

// partSource is what a part is written from.
type partSource interface {
	// Tenants returns the tenants with series, sorted.
	Tenants() []string
	// Series calls fn with every series of tenant, sorted by labels, with
	// chunks in time order. The series and its slices are valid only until
	// fn returns.
	Series(tenant string, fn func(Series) error) error
}

// partWriteOptions tune writePart.
type partWriteOptions struct {
	// Compress compresses the chunk blobs and series groups with zstd, and
	// transcodes XOR chunks (see part_transcode.go) so that it pays: about
	// 20% fewer bytes than raw XOR chunks, but each chunk read is rebuilt.
	Compress bool
	// NoTranscode keeps XOR chunks as they are in compressed parts: reads
	// cost a blob decompression only, the file is about 5% smaller than
	// uncompressed.
	NoTranscode bool
	// NoSync skips the fsyncs. Only for tests and benchmarks.
	NoSync bool
	// hook, if set, is called at each step of writePart ("tenant", "commit",
	// "sync", "rename") and stops it when it returns an error, to simulate
	// a crash there.
	hook func(step string) error
}

func (o partWriteOptions) step(name string) error {
	if o.hook == nil {
		return nil
	}
	return o.hook(name)
}

// writePart writes the series of src into a new part file at path: it
// writes path+".tmp", fsyncs it, renames it to path and fsyncs the
// directory, so that path is either absent or complete. An existing
// temporary file is replaced. On error nothing is left at path, and the
// temporary file is removed unless the error came from opts.hook.
func writePart(path string, meta partMeta, src partSource, opts partWriteOptions) (err error) {
	tmp := path + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("write part %s: %w", path, err)
	}
	db, err := bbolt.Open(tmp, fileMode, &bbolt.Options{NoSync: true, Timeout: openTimeout})
	if err != nil {
		return fmt.Errorf("write part %s: %w", path, err)
	}
	hooked := false
	defer func() {
		if db != nil {
			_ = db.Close() // the write error is the one to report
		}
		if err != nil {
			if !hooked {
				_ = os.Remove(tmp)
			}
			err = fmt.Errorf("write part %s: %w", path, err)
		}
	}()
	step := func(name string) error {
		if err := opts.step(name); err != nil {
			hooked = true
			return err
		}
		return nil
	}
	w := &partWriter{db: db, opts: opts, step: step}
	if err := w.writeAll(src, meta); err != nil {
		if w.tx != nil {
			_ = w.tx.Rollback() // the write error is the one to report
		}
		return err
	}
	err, db = db.Close(), nil
	if err != nil {
		return err
	}
	if err := step("sync"); err != nil {
		return err
	}
	if err := trimFile(tmp, !opts.NoSync); err != nil {
		return err
	}
	if err := step("rename"); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if opts.NoSync {
		return nil
	}
	return syncDir(filepath.Dir(path))
}

// trimFile truncates the bbolt file at path to its high water mark (bbolt
// grows files in powers of two, so up to half of a new file is unused) and,
// with sync, fsyncs it. The file must be closed.
func trimFile(path string, sync bool) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	size, err := bboltHighWater(f)
	if err == nil {
		err = f.Truncate(size)
	}
	if err == nil && sync {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// bboltHighWater returns the size in bytes of the pages a bbolt file uses,
// from the newer of its two meta pages: each is a 16-byte page header, then
// magic(4) version(4) pageSize(4) flags(4) root(16) freelist(8) pgid(8)
// txid(8), pgid being the first page never allocated.
func bboltHighWater(f *os.File) (int64, error) {
	var best, bestTx uint64
	var buf [72]byte
	pageSize := int64(0)
	for i := range 2 {
		if _, err := f.ReadAt(buf[:], int64(i)*pageSize); err != nil {
			return 0, err
		}
		if binary.LittleEndian.Uint32(buf[16:]) != 0xED0CDAED {
			return 0, corruptf("bbolt meta page %d has no magic", i)
		}
		pageSize = int64(binary.LittleEndian.Uint32(buf[24:]))
		pgid, txid := binary.LittleEndian.Uint64(buf[56:]), binary.LittleEndian.Uint64(buf[64:])
		if i == 0 || txid > bestTx {
			best, bestTx = pgid, txid
		}
		if pageSize < 1024 {
			return 0, corruptf("bbolt page size %d", pageSize)
		}
	}
	return int64(best) * pageSize, nil
}

// syncDir fsyncs directory dir, making a rename in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// putPartMeta writes the part_meta bucket, which marks the file complete.
func putPartMeta(tx *bbolt.Tx, meta partMeta) error {
	b, err := tx.CreateBucket(bucketPartMeta)
	if err != nil {
		return err
	}
	if _, err := tx.CreateBucketIfNotExists(bucketTenants); err != nil {
		return err
	}
	if err := b.Put(keyPartMeta, encodePartMeta(meta)); err != nil {
		return err
	}
	return b.Put(keyPartVersion, binary.BigEndian.AppendUint64(nil, partFormatVersion))
}

// partWriter writes the tenants of one part, in as few transactions as
// partCommitBytes allows: small tenants share one.
type partWriter struct {
	db      *bbolt.DB
	opts    partWriteOptions
	step    func(string) error
	tx      *bbolt.Tx
	tenants *bbolt.Bucket // of tx
	pending int           // bytes put in tx
}

// writeAll writes every tenant of src, then the meta, which commits last.
func (w *partWriter) writeAll(src partSource, meta partMeta) error {
	if err := w.begin(); err != nil {
		return err
	}
	for _, tenant := range src.Tenants() {
		if err := w.writeTenant(tenant, src); err != nil {
			return fmt.Errorf("tenant %q: %w", tenant, err)
		}
	}
	if err := putPartMeta(w.tx, meta); err != nil {
		return err
	}
	err := w.tx.Commit()
	w.tx = nil
	return err
}

// begin starts a write transaction.
func (w *partWriter) begin() error {
	tx, err := w.db.Begin(true)
	if err != nil {
		return err
	}
	if w.tenants, err = tx.CreateBucketIfNotExists(bucketTenants); err != nil {
		_ = tx.Rollback()
		return err
	}
	w.tenants.FillPercent = 1
	w.tx, w.pending = tx, 0
	return nil
}

// maybeCommit commits and begins a new transaction if the current one holds
// partCommitBytes.
func (w *partWriter) maybeCommit() error {
	if w.pending < partCommitBytes {
		return nil
	}
	if err := w.step("commit"); err != nil {
		return err
	}
	err := w.tx.Commit()
	w.tx = nil
	if err != nil {
		return err
	}
	return w.begin()
}

// writeTenant writes the blobs of tenant while it streams its series, then
// its index.
func (w *partWriter) writeTenant(tenant string, src partSource) error {
	if tenant == "" {
		return errors.New("empty tenant name")
	}
	if err := w.step("tenant"); err != nil {
		return err
	}
	tw := newTenantWriter(w, []byte(tenant))
	if err := tw.bucket(true); err != nil {
		return err
	}
	err := src.Series(tenant, func(s Series) error {
		if err := tw.add(s); err != nil {
			return err
		}
		if err := w.maybeCommit(); err != nil {
			return err
		}
		return tw.bucket(false)
	})
	if err == nil {
		err = tw.flushBlob()
	}
	if err != nil {
		return err
	}
	if len(tw.ids) == 0 { // no series: drop the bucket
		return w.tenants.DeleteBucket(tw.name)
	}
	if err := tw.putIndex(); err != nil {
		return err
	}
	return w.maybeCommit()
}

// tenantWriter accumulates the index of one tenant while its blobs are
// written.
type tenantWriter struct {
	w         *partWriter
	name      []byte
	b         *bbolt.Bucket // the tenant's, in w.tx
	compress  bool
	transcode bool

	blob   []byte // raw data of the current blob
	blobNo uint32

	// Strings are interned: refs index strs until putIndex maps them to
	// symbol IDs.
	intern map[string]uint32
	strs   []string
	// pairs holds, for series i, refs pairs[ids[i]:ids[i+1]] (name, value,
	// name, value...); metas[metaEnds[i-1]:metaEnds[i]] its encoded chunks.
	pairs    []uint32
	ids      []int // start of each series in pairs
	metas    []byte
	metaEnds []int
	postings map[uint64][]uint32 // name ref<<32 | value ref -> series IDs

	cur     []uint32 // scratch: pairs of the series being added
	scratch []byte   // scratch: a transcoded chunk
	stats   tenantHeader
}

func newTenantWriter(w *partWriter, name []byte) *tenantWriter {
	return &tenantWriter{
		w:         w,
		name:      name,
		compress:  w.opts.Compress,
		transcode: w.opts.Compress && !w.opts.NoTranscode,
		intern:    map[string]uint32{},
		postings:  map[uint64][]uint32{},
		stats:     tenantHeader{minT: maxTime, maxT: minTime},
	}
}

const (
	minTime = -1 << 63
	maxTime = 1<<63 - 1
)

// bucket creates the tenant's bucket, or finds it again in the current
// transaction.
func (tw *tenantWriter) bucket(create bool) error {
	if create {
		b, err := tw.w.tenants.CreateBucket(tw.name)
		if err != nil {
			return err
		}
		tw.b = b
	} else {
		tw.b = tw.w.tenants.Bucket(tw.name)
	}
	tw.b.FillPercent = 1
	return nil
}

// add records series s: its chunks go to the current blob, its labels and
// chunk metas to the index being built.
func (tw *tenantWriter) add(s Series) error {
	if len(s.Chunks) == 0 {
		return nil
	}
	if err := validateChunks(&s); err != nil {
		return err
	}
	if err := tw.internLabels(s.Labels); err != nil {
		return err
	}
	if n := len(tw.ids); n > 0 {
		prev := tw.pairs[tw.ids[n-1]:]
		if comparePairs(tw.strs, prev, tw.cur) >= 0 {
			return fmt.Errorf("series %s not after the previous series %s: %w", s.Labels, pairsString(tw.strs, prev), ErrOutOfOrderSeries)
		}
	}
	id := uint32(len(tw.ids))
	tw.ids = append(tw.ids, len(tw.pairs))
	tw.pairs = append(tw.pairs, tw.cur...)
	for i := 0; i < len(tw.cur); i += 2 {
		k := uint64(tw.cur[i])<<32 | uint64(tw.cur[i+1])
		tw.postings[k] = append(tw.postings[k], id)
	}
	return tw.addChunks(s)
}

// ErrOutOfOrderSeries means a part source gave series out of label order
// or twice.
var ErrOutOfOrderSeries = errors.New("series out of order")

// internLabels sets tw.cur to the interned pairs of lbls, leaving out empty
// values.
func (tw *tenantWriter) internLabels(lbls labels.Labels) error {
	tw.cur = tw.cur[:0]
	var err error
	lbls.Range(func(l labels.Label) {
		switch {
		case err != nil || l.Value == "":
		case l.Name == "" || strings.IndexByte(l.Name, sep) >= 0:
			err = invalidLabelsError{series: lbls.String(), reason: "empty label name or name with byte 0xff"}
		case len(l.Name)+len(l.Value)+2 > bbolt.MaxKeySize:
			err = invalidLabelsError{series: lbls.String(), reason: "label too long"}
		default:
			tw.cur = append(tw.cur, tw.ref(l.Name), tw.ref(l.Value))
		}
	})
	if err == nil && len(tw.cur) == 0 {
		err = invalidLabelsError{series: lbls.String(), reason: "no label with a value"}
	}
	return err
}

func (tw *tenantWriter) ref(s string) uint32 {
	if r, ok := tw.intern[s]; ok {
		return r
	}
	s = strings.Clone(s) // the source's strings may alias its memory
	r := uint32(len(tw.strs))
	tw.intern[s] = r
	tw.strs = append(tw.strs, s)
	return r
}

// comparePairs compares two interned label sets as labels.Compare does.
func comparePairs(strs []string, a, b []uint32) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return strings.Compare(strs[a[i]], strs[b[i]])
		}
	}
	return len(a) - len(b)
}

func pairsString(strs []string, p []uint32) string {
	b := labels.NewScratchBuilder(len(p) / 2)
	for i := 0; i+1 < len(p); i += 2 {
		b.Add(strs[p[i]], strs[p[i+1]])
	}
	return b.Labels().String()
}

// addChunks appends the data of s's chunks to the blobs and their metas to
// tw.metas.
func (tw *tenantWriter) addChunks(s Series) error {
	first := true
	var prevMax int64
	for i := range s.Chunks {
		c := &s.Chunks[i]
		n, err := chunkSamplesCount(c)
		if err != nil {
			return invalidChunkError{series: s.Labels.String(), reason: err.Error()}
		}
		data, enc := c.Data, byte(c.Encoding)
		if tw.transcode && c.Encoding == chunkenc.EncXOR {
			var ok bool
			if tw.scratch, ok = transcodeXOR(tw.scratch[:0], c.Data); ok {
				data, enc = tw.scratch, enc|transcodedFlag
			}
		}
		if len(tw.blob) > 0 && len(tw.blob)+len(data) > partBlobTarget {
			if err := tw.flushBlob(); err != nil {
				return err
			}
		}
		if first {
			tw.metas = binary.AppendUvarint(tw.metas, uint64(len(s.Chunks)))
			tw.metas = binary.AppendUvarint(tw.metas, uint64(tw.blobNo))
			tw.metas = binary.AppendUvarint(tw.metas, uint64(len(tw.blob)))
			tw.metas = binary.AppendVarint(tw.metas, c.MinTime) // rebased in putIndex
		} else {
			tw.metas = binary.AppendUvarint(tw.metas, uint64(c.MinTime)-uint64(prevMax)-1)
		}
		tw.metas = binary.AppendUvarint(tw.metas, uint64(c.MaxTime)-uint64(c.MinTime))
		tw.metas = append(tw.metas, enc)
		tw.metas = binary.AppendUvarint(tw.metas, uint64(len(data)))
		tw.blob = append(tw.blob, data...)
		first, prevMax = false, c.MaxTime
		tw.stats.chunks++
		tw.stats.samples += uint64(n)
		tw.stats.minT = min(tw.stats.minT, c.MinTime)
		tw.stats.maxT = max(tw.stats.maxT, c.MaxTime)
	}
	tw.metaEnds = append(tw.metaEnds, len(tw.metas))
	return nil
}

// chunkSamplesCount returns the number of samples of c: every chunkenc
// encoding starts with it as a big-endian uint16.
func chunkSamplesCount(c *Chunk) (int, error) {
	if len(c.Data) < 2 {
		return 0, fmt.Errorf("chunk of %d bytes", len(c.Data))
	}
	n := int(binary.BigEndian.Uint16(c.Data))
	if n == 0 {
		return 0, errors.New("chunk without samples")
	}
	return n, nil
}

// flushBlob puts the current blob, if any, and starts the next.
func (tw *tenantWriter) flushBlob() error {
	if len(tw.blob) == 0 {
		return nil
	}
	v := encodeBlob(nil, tw.blob, tw.compress)
	if err := tw.b.Put(appendKindKey(nil, kindBlob, tw.blobNo), v); err != nil {
		return err
	}
	tw.stats.bytes += uint64(len(v) + 5)
	tw.w.pending += len(v)
	tw.blobNo++
	tw.blob = make([]byte, 0, partBlobTarget)
	return nil
}

// appendKindKey appends the key of kind with number n.
func appendKindKey(dst []byte, kind byte, n uint32) []byte {
	return binary.BigEndian.AppendUint32(append(dst, kind), n)
}

// putIndex writes the header, postings, symbols and series of the tenant,
// in key order.
func (tw *tenantWriter) putIndex() error {
	sym := tw.symbolIDs()
	idx := tw.encodeIndex(sym)
	tw.stats.series = uint64(len(tw.ids))
	tw.stats.symbols = uint64(len(tw.strs))
	tw.stats.blobs = uint64(tw.blobNo)
	for _, kv := range idx {
		tw.stats.bytes += uint64(len(kv.k) + len(kv.v))
	}
	h := encodeTenantHeader(tw.stats, idx)
	if err := tw.b.Put([]byte{kindHeader}, h); err != nil {
		return err
	}
	for _, kv := range idx {
		if err := tw.b.Put(kv.k, kv.v); err != nil {
			return err
		}
		tw.w.pending += len(kv.v)
	}
	return nil
}

// symbolIDs sorts the interned strings and returns the symbol ID of each
// ref; tw.strs is sorted afterwards.
func (tw *tenantWriter) symbolIDs() []uint32 {
	order := make([]uint32, len(tw.strs))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int { return strings.Compare(tw.strs[a], tw.strs[b]) })
	sym := make([]uint32, len(tw.strs))
	sorted := make([]string, len(tw.strs))
	for id, ref := range order {
		sym[ref] = uint32(id)
		sorted[id] = tw.strs[ref]
	}
	tw.strs = sorted
	return sym
}

type keyValue struct{ k, v []byte }

// encodeIndex returns the postings, symbols and series entries, in key
// order.
func (tw *tenantWriter) encodeIndex(sym []uint32) []keyValue {
	type pair struct{ name, value uint32 } // symbol IDs
	pairs := make([]pair, 0, len(tw.postings))
	for k := range tw.postings {
		pairs = append(pairs, pair{sym[k>>32], sym[uint32(k)]})
	}
	// Symbol order is string order, so this is the order of the keys (a
	// name that extends another sorts after it here and before it there;
	// the postings keys are sorted apart below).
	slices.SortFunc(pairs, func(a, b pair) int {
		return cmpInt64(int64(a.name)<<32|int64(a.value), int64(b.name)<<32|int64(b.value))
	})
	var (
		names      []uint32
		postings   = make([]keyValue, 0, len(pairs))
		valueLists []keyValue
		values     []uint32
	)
	inv := make([]uint32, len(sym)) // symbol ID -> ref
	for ref, id := range sym {
		inv[id] = uint32(ref)
	}
	for i, p := range pairs {
		name, value := tw.strs[p.name], tw.strs[p.value]
		ids := tw.postings[uint64(inv[p.name])<<32|uint64(inv[p.value])]
		postings = append(postings, keyValue{appendPostingsKey(nil, name, value), encodePostings(nil, ids)})
		values = append(values, p.value)
		if i == len(pairs)-1 || pairs[i+1].name != p.name {
			names = append(names, p.name)
			key := append(append([]byte{kindValues}, name...), sep)
			valueLists = append(valueLists, keyValue{key, encodePostings(nil, values)})
			values = values[:0]
		}
	}
	slices.SortFunc(postings, func(a, b keyValue) int { return bytes.Compare(a.k, b.k) })
	slices.SortFunc(valueLists, func(a, b keyValue) int { return bytes.Compare(a.k, b.k) })
	out := append([]keyValue{{[]byte{kindNames}, encodePostings(nil, names)}}, postings...)
	for n := 0; n*symbolsPerBlock < len(tw.strs); n++ {
		block := tw.strs[n*symbolsPerBlock : min(len(tw.strs), (n+1)*symbolsPerBlock)]
		out = append(out, keyValue{appendKindKey(nil, kindSymbols, uint32(n)), encodeSymbolBlock(nil, block)})
	}
	out = append(out, valueLists...)
	var group [][]byte
	for id := range tw.ids {
		group = append(group, tw.encodeSeries(id, sym))
		if len(group) == seriesPerGroup || id == len(tw.ids)-1 {
			key := appendKindKey(nil, kindSeries, uint32(id/seriesPerGroup))
			out = append(out, keyValue{key, encodeSeriesGroup(group, tw.compress)})
			group = group[:0]
		}
	}
	return out
}

// encodeSeries encodes the entry of series id with symbol IDs, its first
// chunk's MinTime rebased on the tenant's MinTime.
func (tw *tenantWriter) encodeSeries(id int, sym []uint32) []byte {
	end := len(tw.pairs)
	if id+1 < len(tw.ids) {
		end = tw.ids[id+1]
	}
	pairs := tw.pairs[tw.ids[id]:end]
	v := binary.AppendUvarint(nil, uint64(len(pairs)/2))
	for _, r := range pairs {
		v = binary.AppendUvarint(v, uint64(sym[r]))
	}
	start := 0
	if id > 0 {
		start = tw.metaEnds[id-1]
	}
	m := tw.metas[start:tw.metaEnds[id]]
	// m: uvarint(chunks) uvarint(blob) uvarint(offset) varint(MinTime) rest.
	for range 3 {
		_, w := binary.Uvarint(m)
		v, m = append(v, m[:w]...), m[w:]
	}
	minT, w := binary.Varint(m)
	v = binary.AppendUvarint(v, uint64(minT)-uint64(tw.stats.minT))
	return append(v, m[w:]...)
}
