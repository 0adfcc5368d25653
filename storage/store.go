package storage

import (
	"errors"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// ErrClosed means the store was used after Close.
var ErrClosed = errors.New("chunk store closed")

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

// ChunkStore is the persistent chunk store of one namespace (the ingester
// opens one per tenant), kept in a single bbolt file. All methods are safe for
// concurrent use; Append calls are serialized by bbolt's single writer.
// Returned slices and strings are owned by the caller (copied out of bbolt's
// memory map).
type ChunkStore struct{}

// Open opens or creates the store at path.
func Open(path string, opts Options) (*ChunkStore, error) { panic("not implemented") }

// Append writes the chunks of every series of batch in one transaction,
// creating the series and its postings when they are new. Each series'
// chunks must be newer than every chunk already stored for it. Append
// returns only after the transaction is committed (and fsynced unless
// Options.NoSync).
func (s *ChunkStore) Append(batch []Series) error { panic("not implemented") }

// LastTime returns the max time of the newest chunk stored for lbls, and
// false if the store holds no chunk of it.
func (s *ChunkStore) LastTime(lbls labels.Labels) (int64, bool, error) { panic("not implemented") }

// Select returns, sorted by labels, every series that matches all matchers
// and has a chunk overlapping [mint, maxt], with those chunks.
func (s *ChunkStore) Select(mint, maxt int64, opts SelectOptions, matchers ...*labels.Matcher) ([]Series, error) {
	panic("not implemented")
}

// LabelNames returns the sorted label names of the series that match all
// matchers and have samples in [mint, maxt].
func (s *ChunkStore) LabelNames(mint, maxt int64, matchers ...*labels.Matcher) ([]string, error) {
	panic("not implemented")
}

// LabelValues returns the sorted values of label name over the series that
// match all matchers and have samples in [mint, maxt].
func (s *ChunkStore) LabelValues(name string, mint, maxt int64, matchers ...*labels.Matcher) ([]string, error) {
	panic("not implemented")
}

// Close closes the store. It is idempotent.
func (s *ChunkStore) Close() error { panic("not implemented") }

// Check verifies the integrity of the bbolt file at path (for tests and the
// operator): page consistency and that every chunk belongs to a known series.
func Check(path string) error { panic("not implemented") }
