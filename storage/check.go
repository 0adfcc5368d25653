package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
)

// Check verifies the integrity of the bbolt file at path (for tests and the
// operator): page consistency and that every chunk belongs to a known series.
// It opens the file read-only, so it fails with ErrLocked if a ChunkStore
// has it open. Inconsistencies are reported as one error matching ErrCorrupt
// that lists the first of them.
//
// Beyond bbolt's own check it verifies that series, series_time and
// series_by_labels agree, that every postings entry names a label of an
// existing series (and every label has its entry), and that the chunks of
// every series decode, do not overlap and span exactly its time range.
// It holds a small struct per series in memory.
func Check(path string) error {
	db, err := bbolt.Open(path, fileMode, &bbolt.Options{ReadOnly: true, Timeout: openTimeout})
	if errors.Is(err, bbolt.ErrTimeout) {
		return fmt.Errorf("check chunk store %s: %w", path, ErrLocked)
	}
	if err != nil {
		return fmt.Errorf("check chunk store %s: %w", path, err)
	}
	var c checker
	err = db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() { // drain: Check writes from a goroutine
			c.addf("bbolt: %v", err)
		}
		if tx.Bucket(bucketMeta) == nil {
			return corruptf("bucket %s missing", bucketMeta)
		}
		if err := initBuckets(tx); err != nil { // only reads when meta exists
			return err
		}
		c.run(newReader(tx))
		return nil
	})
	if err = errors.Join(err, db.Close()); err != nil {
		return fmt.Errorf("check chunk store %s: %w", path, err)
	}
	if c.total > 0 {
		return fmt.Errorf("check chunk store %s: %w", path, corruptError{problems: c.problems, total: c.total})
	}
	return nil
}

// checker accumulates the problems found by Check.
type checker struct {
	problems []string
	total    int
	series   map[uint64]*checkedSeries
}

// checkedSeries is what the checker knows of one series.
type checkedSeries struct {
	labels     []byte // aliases bbolt memory, valid during the View
	nLabels    int    // labels without a postings entry yet
	minT, maxT int64
	hasTime    bool
	nChunks    int
	firstMinT  int64
	lastMaxT   int64
}

func (c *checker) addf(format string, args ...any) {
	if c.total < maxReportedProblems {
		c.problems = append(c.problems, fmt.Sprintf(format, args...))
	}
	c.total++
}

// addErr records err unless it is nil, and reports whether it was nil.
func (c *checker) addErr(err error, format string, args ...any) bool {
	if err == nil {
		return true
	}
	c.addf("%s: %v", fmt.Sprintf(format, args...), err)
	return false
}

func (c *checker) run(r *reader) {
	c.series = map[uint64]*checkedSeries{}
	c.checkSeries(r)
	c.checkSeriesTime(r)
	c.checkByLabels(r)
	c.checkPostings(r)
	if r.chunkRefs != nil {
		c.checkChunkRefs(r)
	} else {
		c.checkChunks(r)
	}
	for id, s := range c.series {
		switch {
		case !s.hasTime:
			c.addf("series %d has no time range", id)
		case s.nLabels != 0:
			c.addf("series %d has %d labels without postings", id, s.nLabels)
		case s.nChunks == 0:
			c.addf("series %d has no chunks", id)
		case s.firstMinT != s.minT || s.lastMaxT != s.maxT:
			c.addf("series %d has time range [%d, %d] but chunks span [%d, %d]", id, s.minT, s.maxT, s.firstMinT, s.lastMaxT)
		}
	}
}

// checkSeries loads the series bucket: IDs and decodable labels.
func (c *checker) checkSeries(r *reader) {
	seq := r.series.Sequence()
	_ = r.series.ForEach(func(k, v []byte) error {
		if len(k) != idLen {
			c.addf("series key %x is not an id", k)
			return nil
		}
		id := binary.BigEndian.Uint64(k)
		if id == 0 || id > seq {
			c.addf("series id %d outside of sequence 1..%d", id, seq)
		}
		n := 0
		err := rangeLabels(v, func(_, _ []byte) bool { n++; return true })
		if c.addErr(err, "series %d", id) && n == 0 {
			c.addf("series %d has no labels", id)
		}
		c.series[id] = &checkedSeries{labels: v, nLabels: n}
		return nil
	})
}

// checkSeriesTime checks that series_time has a valid range for every series
// and nothing else.
func (c *checker) checkSeriesTime(r *reader) {
	_ = r.seriesTime.ForEach(func(k, v []byte) error {
		s := c.lookup(k, "series_time")
		if s == nil {
			return nil
		}
		minT, maxT, err := decodeSeriesTime(v)
		if !c.addErr(err, "series_time of %x", k) {
			return nil
		}
		if minT > maxT {
			c.addf("series_time of %x has min %d after max %d", k, minT, maxT)
		}
		s.minT, s.maxT, s.hasTime = minT, maxT, true
		return nil
	})
}

// checkByLabels checks that series_by_labels is the inverse of series.
func (c *checker) checkByLabels(r *reader) {
	n := 0
	_ = r.byLabels.ForEach(func(k, v []byte) error {
		n++
		if s := c.lookup(v, "series_by_labels"); s != nil && !bytes.Equal(s.labels, k) {
			c.addf("series_by_labels maps %x to series %x with other labels", k, v)
		}
		return nil
	})
	if n != len(c.series) {
		c.addf("series_by_labels has %d entries for %d series", n, len(c.series))
	}
}

// checkPostings checks that every postings entry decodes, that the IDs of
// each label pair increase across its entries (reads concatenate them), and
// that every ID is of a series with that label.
func (c *checker) checkPostings(r *reader) {
	var (
		ids      []uint64
		lastPair []byte // name 0xff value 0xff of the previous entry
		lastID   uint64
	)
	_ = r.postings.ForEach(func(k, v []byte) error {
		name, value, first, err := parsePostingKey(k)
		if !c.addErr(err, "postings") {
			return nil
		}
		ids, err = appendPostingIDs(ids[:0], first, v)
		if !c.addErr(err, "postings entry %q=%q", name, value) {
			return nil
		}
		pair := k[:len(k)-idLen]
		if bytes.Equal(pair, lastPair) && first <= lastID {
			c.addf("postings entry %q=%q of series %d after series %d", name, value, first, lastID)
		}
		lastPair, lastID = pair, ids[len(ids)-1]
		for _, id := range ids {
			c.checkPosting(name, value, id)
		}
		return nil
	})
}

// checkPosting checks that series id exists and has label name=value.
func (c *checker) checkPosting(name, value []byte, id uint64) {
	s := c.lookup(binary.BigEndian.AppendUint64(nil, id), "postings")
	if s == nil {
		return
	}
	got, err := labelValue(s.labels, string(name))
	if !c.addErr(err, "series %d", id) {
		return
	}
	if !bytes.Equal(got, value) {
		c.addf("postings entry %q=%q of series %d, which has %q", name, value, id, got)
		return
	}
	s.nLabels--
}

// checkChunks checks that chunks decode, belong to a series and do not
// overlap, and records the span of each series.
func (c *checker) checkChunks(r *reader) {
	_ = r.chunks.ForEach(func(k, v []byte) error {
		if len(k) != chunkKeyLen {
			c.addf("chunk key %x of %d bytes", k, len(k))
			return nil
		}
		s := c.lookup(k[:idLen], "chunk")
		m, err := decodeChunk(k, v)
		if s == nil || !c.addErr(err, "chunk") {
			return nil
		}
		if s.nChunks > 0 && m.minT <= s.lastMaxT {
			c.addf("chunk %x starts at %d, not after the previous chunk's end %d", k, m.minT, s.lastMaxT)
		}
		if s.nChunks == 0 {
			s.firstMinT = m.minT
		}
		s.nChunks++
		s.lastMaxT = m.maxT
		return nil
	})
}

// lookup returns the series of the 8-byte id b, or records a problem.
func (c *checker) lookup(b []byte, what string) *checkedSeries {
	if len(b) != idLen {
		c.addf("%s refers to malformed series id %x", what, b)
		return nil
	}
	s := c.series[binary.BigEndian.Uint64(b)]
	if s == nil {
		c.addf("%s refers to missing series %d", what, binary.BigEndian.Uint64(b))
	}
	return s
}
