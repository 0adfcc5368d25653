package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
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

// initBuckets creates the buckets of a new file, or checks the format
// version of an existing one.
func initBuckets(tx *bbolt.Tx) error {
	if meta := tx.Bucket(bucketMeta); meta != nil {
		v := meta.Get(keyFormatVersion)
		if len(v) != 8 || binary.BigEndian.Uint64(v) != formatVersion {
			return fmt.Errorf("%w: format version %x, want %d", ErrUnsupportedFormat, v, formatVersion)
		}
		for _, name := range dataBuckets {
			if tx.Bucket(name) == nil {
				return corruptf("bucket %s missing", name)
			}
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
	newPostings [][]byte          // postings keys, in the arena
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
		w.key = appendPostingKey(w.key[:0], name, value, id)
		w.newPostings = append(w.newPostings, w.values.copy(w.key))
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
// series created in this transaction, each bucket in key order.
func (w *writer) putIndexEntries() error {
	byLabels := make([]string, 0, len(w.newByLabels))
	for k := range w.newByLabels {
		byLabels = append(byLabels, k)
	}
	slices.Sort(byLabels)
	for _, k := range byLabels {
		if err := w.byLabels.Put([]byte(k), appendID(w.values.alloc(idLen), w.newByLabels[k])); err != nil {
			return fmt.Errorf("put series by labels: %w", err)
		}
	}
	slices.SortFunc(w.newPostings, bytes.Compare)
	for _, k := range w.newPostings {
		if err := w.postings.Put(k, emptyValue); err != nil {
			return fmt.Errorf("put postings: %w", err)
		}
	}
	return w.putLabelValues()
}

// putLabelValues adds the label pairs of the new series that the
// label-values index lacks. The postings keys are sorted, so the pairs come
// in key order, each pair's keys together.
func (w *writer) putLabelValues() error {
	if w.lvIndex == nil {
		return nil
	}
	var last []byte
	for _, k := range w.newPostings {
		pair := k[:len(k)-idLen-1] // name 0xff value
		if bytes.Equal(pair, last) {
			continue
		}
		last = pair
		if w.lvIndex.Get(pair) != nil {
			continue
		}
		if err := w.lvIndex.Put(pair, emptyValue); err != nil {
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
