package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"go.etcd.io/bbolt"
)

// Chunk is one encoded chunk of one series. Times are Unix milliseconds,
// inclusive.
type Chunk struct {
	MinTime, MaxTime int64
	Encoding         chunkenc.Encoding
	Data             []byte
}

// Series is a label set with chunks, as written to and read from the store.
type Series struct {
	Labels labels.Labels
	// Chunks are ordered by time and do not overlap.
	Chunks []Chunk
}

// Options tune a ChunkStore.
type Options struct {
	// NoSync skips the fsync at the end of each write transaction. Only for
	// tests and benchmarks: a crash may then lose committed chunks.
	NoSync bool
}

// SelectOptions tune a Select.
type SelectOptions struct {
	// SkipChunks returns the matching series without their chunks.
	SkipChunks bool
	// KeepTranscoded returns the float chunks of compressed parts as they
	// are stored, with Encoding EncTranscodedXOR (read them with NewChunk),
	// instead of rebuilding their XOR bytes: for a reader in the same
	// process that iterates samples and sends no chunk on a wire.
	KeepTranscoded bool
}

// openTimeout bounds the wait for the file lock, so that a second opener of
// the same file fails fast with ErrLocked instead of hanging.
const openTimeout = time.Second

// fileMode is the permission of a new store file: tenant data is private.
const fileMode = 0o600

// ChunkStore is the persistent chunk store of one namespace (the ingester
// opens one per tenant), kept in a single bbolt file. All methods are safe for
// concurrent use; Append calls are serialized by bbolt's single writer, and
// reads run in parallel on consistent snapshots. Returned slices and strings
// are owned by the caller (copied out of bbolt's memory map). Times are Unix
// milliseconds, and ranges are inclusive.
type ChunkStore struct {
	db *bbolt.DB

	mu     sync.RWMutex // held for reading by every operation, for writing by Close
	closed bool         // guarded by mu
}

// Open opens or creates the store at path; the directory must exist. It
// fails with ErrLocked after about a second if another opener holds the file,
// and with ErrUnsupportedFormat if the file has another format version.
// Open starts no goroutines.
func Open(path string, opts Options) (*ChunkStore, error) {
	db, err := bbolt.Open(path, fileMode, &bbolt.Options{
		Timeout:      openTimeout,
		NoSync:       opts.NoSync,
		FreelistType: bbolt.FreelistMapType,
	})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("open chunk store %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open chunk store %s: %w", path, err)
	}
	if err := db.Update(initBuckets); err != nil {
		_ = db.Close() // the init error is the one to report
		return nil, fmt.Errorf("open chunk store %s: %w", path, err)
	}
	return &ChunkStore{db: db}, nil
}

// knownVersion reports whether the format_version value v is one of
// versions.
func knownVersion(v []byte, versions ...uint64) bool {
	return len(v) == 8 && slices.Contains(versions, binary.BigEndian.Uint64(v))
}

// initBuckets creates the buckets of a new file, or checks the format
// version of an existing one, upgrading version 1 in a writable tx.
func initBuckets(tx *bbolt.Tx) error {
	if meta := tx.Bucket(bucketMeta); meta != nil {
		v := meta.Get(keyFormatVersion)
		if !knownVersion(v, formatVersionOneIDList, formatVersion) {
			return fmt.Errorf("%w: format version %x, want %d", ErrUnsupportedFormat, v, formatVersion)
		}
		for _, name := range dataBuckets {
			if tx.Bucket(name) == nil {
				return corruptf("bucket %s missing", name)
			}
		}
		if tx.Writable() && binary.BigEndian.Uint64(v) != formatVersion {
			return meta.Put(keyFormatVersion, binary.BigEndian.AppendUint64(nil, formatVersion))
		}
		return nil
	}
	meta, err := tx.CreateBucket(bucketMeta)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketMeta, err)
	}
	if err := meta.Put(keyFormatVersion, binary.BigEndian.AppendUint64(nil, formatVersion)); err != nil {
		return fmt.Errorf("write format version: %w", err)
	}
	for _, name := range dataBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// dataBuckets are the buckets besides meta.
var dataBuckets = [][]byte{bucketSeries, bucketSeriesTime, bucketByLabels, bucketPostings, bucketChunks}

// Append writes the chunks of every series of batch in one transaction,
// creating the series and its postings when they are new. Each series'
// chunks must be newer than every chunk already stored for it. Append
// returns only after the transaction is committed (and fsynced unless
// Options.NoSync).
//
// Validation errors (ErrOutOfOrderChunk, ErrInvalidChunk, ErrInvalidLabels)
// reject the whole batch and leave the store unchanged. Series without
// chunks are ignored. Append does not retain batch; it blocks while another
// Append commits.
func (s *ChunkStore) Append(batch []Series) error {
	for i := range batch {
		if err := validateChunks(&batch[i]); err != nil {
			return err
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		w := newWriter(tx)
		for i := range batch {
			if err := w.appendSeries(&batch[i]); err != nil {
				return err
			}
		}
		return w.putIndexEntries()
	})
}

// validateChunks checks the chunks of one series on their own: each is well
// formed and starts after the previous one ends.
func validateChunks(sr *Series) error {
	for i := range sr.Chunks {
		c := &sr.Chunks[i]
		var reason string
		switch {
		case c.MinTime > c.MaxTime:
			reason = fmt.Sprintf("min time %d after max time %d", c.MinTime, c.MaxTime)
		case !chunkenc.IsValidEncoding(c.Encoding):
			reason = fmt.Sprintf("unknown encoding %d", c.Encoding)
		case len(c.Data) == 0:
			reason = "no data"
		}
		if reason != "" {
			return invalidChunkError{series: sr.Labels.String(), reason: reason}
		}
		if i > 0 && c.MinTime <= sr.Chunks[i-1].MaxTime {
			return outOfOrderChunkError{series: sr.Labels.String(), minTime: c.MinTime, prevMaxTime: sr.Chunks[i-1].MaxTime}
		}
	}
	return nil
}

// writer holds the state of one Append transaction.
type writer struct {
	txBuckets

	values arena  // Put values, which must live until the commit
	lbls   []byte // scratch: encoded labels (bbolt copies keys)
	key    []byte // scratch: other keys

	// The series_by_labels and postings entries of the series created in
	// this transaction, written sorted by putIndexEntries. bbolt splits
	// nodes only at commit, so unsorted puts into one bucket cost a shift
	// of a growing leaf each: quadratic for a first flush of many series.
	newByLabels map[string]uint64 // encoded labels -> id
	newPostings newPostings
}

func newWriter(parent bucketParent) *writer {
	w := &writer{txBuckets: openTxBuckets(parent)}
	// IDs only grow, so new series always go to the right edge of these
	// buckets: fill their pages up instead of leaving half of each empty.
	w.series.FillPercent = 0.95
	w.seriesTime.FillPercent = 0.95
	// A series' new chunk goes to the right end of its key range, in the
	// middle of the bucket. Splitting full leaves at 90% instead of bbolt's
	// 50% cut the file size by about a fifth in BenchmarkAppend (mode=extend).
	w.chunks.FillPercent = 0.9
	if w.lvIndex != nil {
		// A DB partition file lives for one window: its series come
		// mostly in its first flushes, written in key order by
		// putIndexEntries, so full pages are the right split.
		w.byLabels.FillPercent = 0.95
		w.postings.FillPercent = 0.95
		w.lvIndex.FillPercent = 0.95
	}
	if w.chunkRefs != nil {
		// Chunks are keyed by a sequence: always at the right edge.
		w.chunks.FillPercent = 1
	}
	return w
}

// appendSeries writes the chunks of sr, creating the series if it is new.
func (w *writer) appendSeries(sr *Series) error {
	if len(sr.Chunks) == 0 {
		return nil
	}
	var err error
	if w.lbls, err = appendLabels(w.lbls[:0], sr.Labels); err != nil {
		return err
	}
	first, last := &sr.Chunks[0], &sr.Chunks[len(sr.Chunks)-1]
	var id uint64
	if newID, ok := w.newByLabels[string(w.lbls)]; ok {
		if err := w.extendNewSeries(sr, newID, last.MaxTime); err != nil {
			return err
		}
		id = newID
	} else if v := w.byLabels.Get(w.lbls); v != nil {
		if len(v) != idLen {
			return corruptf("series id of %d bytes for series %s", len(v), sr.Labels)
		}
		id = binary.BigEndian.Uint64(v)
		if err := w.extendSeries(sr, id, first.MinTime, last.MaxTime); err != nil {
			return err
		}
	} else if id, err = w.createSeries(first.MinTime, last.MaxTime); err != nil {
		return fmt.Errorf("create series %s: %w", sr.Labels, err)
	}
	if w.chunkRefs != nil {
		if err := w.putChunksByRef(id, sr.Chunks); err != nil {
			return fmt.Errorf("put chunks of series %s: %w", sr.Labels, err)
		}
		return nil
	}
	for i := range sr.Chunks {
		c := &sr.Chunks[i]
		w.key = appendChunkKey(w.key[:0], id, c.MaxTime)
		v := appendChunkValue(w.values.alloc(chunkValueLen(c)), c)
		if err := w.chunks.Put(w.key, v); err != nil {
			return fmt.Errorf("put chunk of series %s: %w", sr.Labels, err)
		}
	}
	return nil
}

// extendSeries checks that the chunks from minT to maxT start after the
// stored ones of series id, and records the new max time.
func (w *writer) extendSeries(sr *Series, id uint64, minT, maxT int64) error {
	w.key = appendID(w.key[:0], id)
	storedMin, storedMax, err := decodeSeriesTime(w.seriesTime.Get(w.key))
	if err != nil {
		return fmt.Errorf("series %s: %w", sr.Labels, err)
	}
	if minT <= storedMax {
		return outOfOrderChunkError{series: sr.Labels.String(), minTime: minT, prevMaxTime: storedMax, stored: true}
	}
	v := appendSeriesTime(w.values.alloc(seriesTimeLen), storedMin, maxT)
	if err := w.seriesTime.Put(w.key, v); err != nil {
		return fmt.Errorf("put time of series %s: %w", sr.Labels, err)
	}
	return nil
}

// createSeries assigns an ID to the series whose encoded labels are in
// w.lbls and writes its entries in series, series_time, series_by_labels and
// postings.
func (w *writer) createSeries(minT, maxT int64) (uint64, error) {
	id, err := w.series.NextSequence()
	if err != nil {
		return 0, err
	}
	idKey := appendID(w.values.alloc(idLen), id)
	if err := w.series.Put(idKey, w.values.copy(w.lbls)); err != nil {
		return 0, err
	}
	if err := w.seriesTime.Put(idKey, appendSeriesTime(w.values.alloc(seriesTimeLen), minT, maxT)); err != nil {
		return 0, err
	}
	if w.newByLabels == nil {
		w.newByLabels = map[string]uint64{}
	}
	w.newByLabels[string(w.lbls)] = id
	err = rangeLabels(w.lbls, func(name, value []byte) bool {
		w.key = append(append(append(append(w.key[:0], name...), sep), value...), sep)
		w.newPostings.add(w.key, id)
		return true
	})
	return id, err
}

// extendNewSeries records a later max time for a series created earlier in
// the same transaction, after checking its chunks come after the earlier ones.
func (w *writer) extendNewSeries(sr *Series, id uint64, maxT int64) error {
	idKey := appendID(w.key[:0], id)
	storedMin, storedMax, err := decodeSeriesTime(w.seriesTime.Get(idKey))
	if err != nil {
		return fmt.Errorf("series %s: %w", sr.Labels, err)
	}
	if sr.Chunks[0].MinTime <= storedMax {
		return outOfOrderChunkError{series: sr.Labels.String(), minTime: sr.Chunks[0].MinTime, prevMaxTime: storedMax, stored: true}
	}
	return w.seriesTime.Put(idKey, appendSeriesTime(w.values.alloc(seriesTimeLen), storedMin, maxT))
}

// putIndexEntries writes the series_by_labels and postings entries of the
// series created in this transaction, each bucket in key order. The whole
// postings entry of a pair is written in this one transaction, so a crash
// leaves either all of its IDs or none.
func (w *writer) putIndexEntries() error {
	byLabels := make([]string, 0, len(w.newByLabels))
	for k := range w.newByLabels {
		byLabels = append(byLabels, k)
	}
	slices.Sort(byLabels)
	for _, k := range byLabels {
		w.key = append(w.key[:0], k...) // bbolt copies the key
		if err := w.byLabels.Put(w.key, appendID(w.values.alloc(idLen), w.newByLabels[k])); err != nil {
			return fmt.Errorf("put series by labels: %w", err)
		}
	}
	pairs, ids := w.newPostings.sorted()
	for _, p := range pairs {
		// One entry per pair per transaction, keyed by its first ID (a
		// pair's earlier entries have smaller ones), holding the others.
		// bbolt copies the key, so one buffer serves every Put; the value
		// must live until the commit.
		run := ids[p.start:p.end]
		w.key = appendID(append(w.key[:0], p.prefix...), run[0])
		v := emptyValue
		if len(run) > 1 {
			v = appendPostingValue(w.values.alloc(postingValueLen(run)), run)
		}
		if err := w.postings.Put(w.key, v); err != nil {
			return fmt.Errorf("put postings: %w", err)
		}
	}
	return w.putLabelValues(pairs)
}

// putLabelValues adds the label pairs of the new series that the
// label-values index lacks, in key order.
func (w *writer) putLabelValues(pairs []postingsRun) error {
	if w.lvIndex == nil {
		return nil
	}
	for _, p := range pairs {
		w.key = append(w.key[:0], p.prefix[:len(p.prefix)-1]...) // name 0xff value
		if w.lvIndex.Get(w.key) != nil {
			continue
		}
		if err := w.lvIndex.Put(w.key, emptyValue); err != nil {
			return fmt.Errorf("put label values: %w", err)
		}
	}
	return nil
}

// LastTime returns the max time of the newest chunk stored for lbls, and
// false if the store holds no chunk of it. It costs two B+tree lookups.
func (s *ChunkStore) LastTime(lbls labels.Labels) (int64, bool, error) {
	key, err := appendLabels(nil, lbls)
	if err != nil {
		return 0, false, err
	}
	var (
		maxT  int64
		found bool
	)
	err = s.view(func(r *reader) error {
		id := r.byLabels.Get(key)
		if id == nil {
			return nil
		}
		_, t, err := decodeSeriesTime(r.seriesTime.Get(id))
		if err != nil {
			return fmt.Errorf("series %s: %w", lbls, err)
		}
		maxT, found = t, true
		return nil
	})
	return maxT, found, err
}

// Close closes the store. It is idempotent. It waits for running operations
// to finish; later calls of other methods return ErrClosed.
func (s *ChunkStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close chunk store: %w", err)
	}
	return nil
}

// view runs fn in a read transaction, unless the store is closed.
func (s *ChunkStore) view(fn func(r *reader) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.db.View(func(tx *bbolt.Tx) error {
		return fn(newReader(tx))
	})
}

// newPostings collects the postings of the series created in one
// transaction grouped by label pair, so that a first flush of many series
// sorts its distinct pairs once (series share most of their pairs) instead
// of a full key per label per series, and keeps no copy of the keys, which
// bbolt makes on Put.
type newPostings struct {
	index    map[string]int32 // pair prefix (name 0xff value 0xff) -> index in prefixes
	prefixes []string
	// refs holds one entry per label pair per new series, in the order the
	// series were created: their IDs come from the bucket sequence, so each
	// pair's IDs are in increasing order, as its keys sort.
	refs []pairRef
}

type pairRef struct {
	pair int32 // index in prefixes
	id   uint64
}

// postingsRun is one label pair's new IDs: ids[start:end] of sorted.
type postingsRun struct {
	prefix     string // name 0xff value 0xff
	start, end int
}

// add records that series id has the pair whose postings key prefix is p.
func (n *newPostings) add(p []byte, id uint64) {
	i, ok := n.index[string(p)]
	if !ok {
		if n.index == nil {
			n.index = map[string]int32{}
		}
		i = int32(len(n.prefixes))
		n.prefixes = append(n.prefixes, string(p))
		n.index[n.prefixes[i]] = i
	}
	n.refs = append(n.refs, pairRef{pair: i, id: id})
}

// sorted returns the pairs in the order of their prefixes, and the IDs of
// each pair in increasing order. Prefixes sort as the full keys do unless a
// value holds a 0xff byte (one prefix then extends another); the keys are
// then put slightly out of order, which bbolt accepts at some extra cost.
func (n *newPostings) sorted() ([]postingsRun, []uint64) {
	runs := make([]postingsRun, len(n.prefixes))
	counts := make([]int, len(n.prefixes))
	for _, r := range n.refs {
		counts[r.pair]++
	}
	for i, p := range n.prefixes {
		runs[i] = postingsRun{prefix: p, end: counts[i]} // end holds the count until placed
	}
	slices.SortFunc(runs, func(a, b postingsRun) int { return strings.Compare(a.prefix, b.prefix) })
	// A counting sort of the refs by the rank of their pair: stable, so
	// each pair keeps its IDs in creation order.
	next := counts // reused: the next free slot of each pair
	start := 0
	for i := range runs {
		r := &runs[i]
		r.start, r.end = start, start+r.end
		next[n.index[r.prefix]] = r.start
		start = r.end
	}
	ids := make([]uint64, len(n.refs))
	for _, r := range n.refs {
		ids[next[r.pair]] = r.id
		next[r.pair]++
	}
	return runs, ids
}
