package storage

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// mergeSources returns a source with the tenants and series of all srcs: a
// k-way merge by labels. A series in several sources gets the chunks of all
// of them in time order: identical chunks once, and chunks that overlap
// re-encoded together into XOR chunks of at most mergedChunkSamples
// samples without overlap. When two sources have a sample at the same time,
// the one of the later source in srcs wins. Compaction merges parts with it.
func mergeSources(srcs ...partSource) partSource {
	return mergedSource(srcs)
}

// mergedChunkSamples is the most samples a re-encoded chunk holds, as in
// Prometheus's head.
const mergedChunkSamples = 120

type mergedSource []partSource

func (m mergedSource) Tenants() []string {
	var out []string
	for _, s := range m {
		out = append(out, s.Tenants()...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// mergeHead is the current series of one source of a merge.
type mergeHead struct {
	next func() (Series, bool)
	stop func()
	err  error // the source's error, once next returned false
	cur  Series
	ok   bool
}

// errStopSource ends a source's Series early when the merge stops.
var errStopSource = errors.New("merge stopped")

func (m mergedSource) Series(tenant string, fn func(Series) error) error {
	heads := make([]*mergeHead, len(m))
	for i, src := range m {
		h := &mergeHead{}
		seq := func(yield func(Series) bool) {
			h.err = src.Series(tenant, func(s Series) error {
				if !yield(s) {
					return errStopSource
				}
				return nil
			})
		}
		h.next, h.stop = iter.Pull(seq)
		defer h.stop()
		heads[i] = h
		h.cur, h.ok = h.next()
	}
	var group []taggedChunk
	for {
		var min *mergeHead
		for _, h := range heads {
			if h.err != nil {
				return h.err
			}
			if h.ok && (min == nil || labels.Compare(h.cur.Labels, min.cur.Labels) < 0) {
				min = h
			}
		}
		if min == nil {
			return nil
		}
		lbls, n := min.cur.Labels, 0
		group = group[:0]
		for i, h := range heads {
			if h.ok && labels.Equal(h.cur.Labels, lbls) {
				for _, c := range h.cur.Chunks {
					group = append(group, taggedChunk{c, i})
				}
				n++
			}
		}
		chunks, err := mergeChunks(group, n > 1)
		if err != nil {
			return fmt.Errorf("merge series %s: %w", lbls, err)
		}
		if err := fn(Series{Labels: lbls, Chunks: chunks}); err != nil {
			return err
		}
		for _, h := range heads {
			// The series of the heads in the group are used up only now:
			// their chunks may alias memory that next reuses.
			if h.ok && labels.Equal(h.cur.Labels, lbls) {
				h.cur, h.ok = h.next()
			}
		}
	}
}

// taggedChunk is a chunk with the index of its source.
type taggedChunk struct {
	Chunk
	src int
}

// mergeChunks returns the chunks of one series from several sources
// (several is false if all come from one, already in order) in time order
// without overlap.
func mergeChunks(in []taggedChunk, several bool) ([]Chunk, error) {
	out := make([]Chunk, 0, len(in))
	if !several {
		for _, c := range in {
			out = append(out, c.Chunk)
		}
		return out, nil
	}
	slices.SortStableFunc(in, func(a, b taggedChunk) int {
		if a.MinTime != b.MinTime {
			return cmpInt64(a.MinTime, b.MinTime)
		}
		return cmpInt64(a.MaxTime, b.MaxTime)
	})
	// Drop exact duplicates, keeping the first.
	uniq := in[:0]
	for _, c := range in {
		if n := len(uniq); n > 0 && sameChunk(&uniq[n-1].Chunk, &c.Chunk) {
			continue
		}
		uniq = append(uniq, c)
	}
	for i := 0; i < len(uniq); {
		j, end := i+1, uniq[i].MaxTime
		for j < len(uniq) && uniq[j].MinTime <= end {
			end = max(end, uniq[j].MaxTime)
			j++
		}
		if j == i+1 {
			out = append(out, uniq[i].Chunk)
		} else {
			merged, err := reencode(uniq[i:j])
			if err != nil {
				return nil, err
			}
			out = append(out, merged...)
		}
		i = j
	}
	return out, nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sameChunk(a, b *Chunk) bool {
	return a.MinTime == b.MinTime && a.MaxTime == b.MaxTime && a.Encoding == b.Encoding && bytes.Equal(a.Data, b.Data)
}

// taggedSample is a sample with the source of its chunk.
type taggedSample struct {
	t   int64
	v   float64
	src int
}

// reencode merges the samples of overlapping chunks into new chunks (XOR
// ones here; with any other, reencodeAny).
func reencode(group []taggedChunk) ([]Chunk, error) {
	var samples []taggedSample
	var it chunkenc.Iterator
	for _, c := range group {
		if c.Encoding != chunkenc.EncXOR {
			return reencodeAny(group) // histogram.go
		}
		ch, err := chunkenc.FromData(c.Encoding, c.Data)
		if err != nil {
			return nil, err
		}
		it = ch.Iterator(it)
		for it.Next() == chunkenc.ValFloat {
			t, v := it.At()
			samples = append(samples, taggedSample{t, v, c.src})
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(samples, func(a, b taggedSample) int {
		if a.t != b.t {
			return cmpInt64(a.t, b.t)
		}
		return a.src - b.src
	})
	// Of equal times keep the last, which has the highest source.
	kept := samples[:0]
	for _, s := range samples {
		if n := len(kept); n > 0 && kept[n-1].t == s.t {
			kept[n-1] = s
			continue
		}
		kept = append(kept, s)
	}
	var out []Chunk
	for len(kept) > 0 {
		n := min(len(kept), mergedChunkSamples)
		c := chunkenc.NewXORChunk()
		app, err := c.Appender()
		if err != nil {
			return nil, err
		}
		for _, s := range kept[:n] {
			app.Append(0, s.t, s.v)
		}
		out = append(out, Chunk{MinTime: kept[0].t, MaxTime: kept[n-1].t, Encoding: chunkenc.EncXOR, Data: c.Bytes()})
		kept = kept[n:]
	}
	return out, nil
}
