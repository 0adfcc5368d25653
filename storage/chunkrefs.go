package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// In a DB level-0 file a tenant's chunks are keyed by a sequence rather than
// by series and time, so that every flush appends them at the right edge of
// the chunks bucket: full pages, and no rewrite of the pages of earlier
// flushes (with keys by series, each flush touched every leaf of the bucket,
// and bbolt's copy-on-write left as many freed pages). Each series lists its
// chunks in chunk_refs. See doc.go.

// bucketChunkRefs is the chunk list of each series of a tenant in a DB
// level-0 file: id -> refs.
var bucketChunkRefs = []byte("chunk_refs")

// chunkRef locates one chunk of a series.
type chunkRef struct {
	seq        uint64 // key in the chunks bucket
	minT, maxT int64
}

// maxChunkRefLen bounds the encoded size of one chunk ref.
const maxChunkRefLen = 3 * binary.MaxVarintLen64

// appendChunkRef encodes ref after a chunk ending at prevMaxT (0 for the
// first): uvarint(seq) varint(minT - prevMaxT) uvarint(maxT - minT).
func appendChunkRef(dst []byte, ref chunkRef, prevMaxT int64) []byte {
	dst = binary.AppendUvarint(dst, ref.seq)
	dst = binary.AppendVarint(dst, ref.minT-prevMaxT)
	return binary.AppendUvarint(dst, uint64(ref.maxT)-uint64(ref.minT))
}

// nextChunkRef decodes the ref at the start of v, which follows a chunk
// ending at prev, and returns the rest of v.
func nextChunkRef(v []byte, prev int64) (chunkRef, []byte, error) {
	seq, n1 := binary.Uvarint(v)
	if n1 <= 0 {
		return chunkRef{}, nil, corruptf("malformed chunk ref")
	}
	d, n2 := binary.Varint(v[n1:])
	if n2 <= 0 {
		return chunkRef{}, nil, corruptf("malformed chunk ref")
	}
	span, n3 := binary.Uvarint(v[n1+n2:])
	if n3 <= 0 {
		return chunkRef{}, nil, corruptf("malformed chunk ref")
	}
	ref := chunkRef{seq: seq, minT: prev + d}
	ref.maxT = int64(uint64(ref.minT) + span)
	if ref.maxT < ref.minT {
		return chunkRef{}, nil, corruptf("chunk ref %d: min time %d after max time %d", seq, ref.minT, ref.maxT)
	}
	return ref, v[n1+n2+n3:], nil
}

// rangeChunkRefs calls fn with each ref of an encoded list, in order, until
// fn returns false. It returns the max time of the last ref decoded.
func rangeChunkRefs(v []byte, fn func(chunkRef) bool) (int64, error) {
	prev := int64(0)
	for len(v) > 0 {
		ref, rest, err := nextChunkRef(v, prev)
		if err != nil {
			return 0, err
		}
		v, prev = rest, ref.maxT
		if !fn(ref) {
			break
		}
	}
	return prev, nil
}

// putChunksByRef writes chunks of series id under new sequence keys and
// appends their refs to the series' list.
func (w *writer) putChunksByRef(id uint64, chunks []Chunk) error {
	idKey := appendID(w.values.alloc(idLen), id)
	old := w.chunkRefs.Get(idKey)
	prev, err := rangeChunkRefs(old, func(chunkRef) bool { return true })
	if err != nil {
		return err
	}
	refs := append(w.values.alloc(len(old)+maxChunkRefLen*len(chunks)), old...)
	for i := range chunks {
		c := &chunks[i]
		seq, err := w.chunks.NextSequence()
		if err != nil {
			return err
		}
		w.key = appendID(w.key[:0], seq)
		v := append(append(w.values.alloc(1+len(c.Data)), byte(c.Encoding)), c.Data...)
		if err := w.chunks.Put(w.key, v); err != nil {
			return err
		}
		refs = appendChunkRef(refs, chunkRef{seq: seq, minT: c.MinTime, maxT: c.MaxTime}, prev)
		prev = c.MaxTime
	}
	return w.chunkRefs.Put(idKey, refs)
}

// chunksByRef is chunksInRange for a file with chunk_refs.
func (r *reader) chunksByRef(id uint64, mint, maxt int64, copyOut func(chunkMeta) Chunk) ([]Chunk, bool, error) {
	var (
		out   []Chunk
		found bool
		prev  int64
	)
	r.key = appendID(r.key[:0], id)
	for refs := r.chunkRefsFwd.get(r.chunkRefs, r.key); len(refs) > 0; {
		ref, rest, err := nextChunkRef(refs, prev)
		if err != nil {
			return nil, false, fmt.Errorf("series %d: %w", id, err)
		}
		refs, prev = rest, ref.maxT
		if ref.maxT < mint {
			continue
		}
		if ref.minT > maxt {
			break
		}
		found = true
		if copyOut == nil {
			break
		}
		m, err := r.chunkByRef(ref)
		if err != nil {
			return nil, false, err
		}
		out = append(out, copyOut(m))
	}
	return out, found, nil
}

// chunkByRef reads the chunk of ref; its data aliases bbolt memory.
func (r *reader) chunkByRef(ref chunkRef) (chunkMeta, error) {
	var key [idLen]byte
	binary.BigEndian.PutUint64(key[:], ref.seq)
	v := r.chunks.Get(key[:])
	if len(v) < 2 {
		return chunkMeta{}, corruptf("chunk %d missing or empty", ref.seq)
	}
	return chunkMeta{minT: ref.minT, maxT: ref.maxT, enc: chunkenc.Encoding(v[0]), data: v[1:]}, nil
}

// checkChunkRefs checks the chunk lists of a file with chunk_refs: every
// ref points to a chunk no other ref points to, refs of a series are in
// order without overlap, and no chunk is unreferenced.
func (c *checker) checkChunkRefs(r *reader) {
	referenced := map[uint64]bool{}
	_ = r.chunkRefs.ForEach(func(k, v []byte) error {
		s := c.lookup(k, "chunk_refs")
		if s == nil {
			return nil
		}
		_, err := rangeChunkRefs(v, func(ref chunkRef) bool {
			if referenced[ref.seq] {
				c.addf("chunk %d referenced twice", ref.seq)
			}
			referenced[ref.seq] = true
			if _, err := r.chunkByRef(ref); err != nil {
				c.addf("series %x: %v", k, err)
			}
			if s.nChunks > 0 && ref.minT <= s.lastMaxT {
				c.addf("series %x: chunk %d starts at %d, not after the previous chunk's end %d", k, ref.seq, ref.minT, s.lastMaxT)
			}
			if s.nChunks == 0 {
				s.firstMinT = ref.minT
			}
			s.nChunks++
			s.lastMaxT = ref.maxT
			return true
		})
		c.addErr(err, "chunk_refs of %x", k)
		return nil
	})
	seq := r.chunks.Sequence()
	_ = r.chunks.ForEach(func(k, _ []byte) error {
		switch {
		case len(k) != idLen:
			c.addf("chunk key %x of %d bytes", k, len(k))
		case binary.BigEndian.Uint64(k) > seq:
			c.addf("chunk %x beyond the sequence %d", k, seq)
		case !referenced[binary.BigEndian.Uint64(k)]:
			c.addf("chunk %x referenced by no series", k)
		}
		return nil
	})
}

// purgeSeriesByRef is purgeSeries for a file with chunk_refs.
func purgeSeriesByRef(r *reader, a *arena, v purgeVictim) error {
	idKey := appendID(nil, v.id)
	var (
		refs []chunkRef
		err  error
	)
	_, rerr := rangeChunkRefs(r.chunkRefs.Get(idKey), func(ref chunkRef) bool {
		refs = append(refs, ref)
		return true
	})
	if rerr != nil {
		return rerr
	}
	var (
		out  []byte
		prev int64
		n    int
		minT int64
	)
	for _, ref := range refs {
		m, err := r.chunkByRef(ref)
		if err != nil {
			return err
		}
		c := Chunk{MinTime: m.minT, MaxTime: m.maxT, Encoding: m.enc, Data: bytes.Clone(m.data)}
		kept, res, err := trimChunk(c, v.dels)
		if err != nil {
			return err
		}
		if res != chunkKept {
			if err := r.chunks.Delete(appendID(nil, ref.seq)); err != nil {
				return err
			}
		}
		if res == chunkDropped {
			continue
		}
		if res == chunkTrimmed {
			if ref.seq, err = r.chunks.NextSequence(); err != nil {
				return err
			}
			val := append(append(a.alloc(1+len(kept.Data)), byte(kept.Encoding)), kept.Data...)
			if err := r.chunks.Put(appendID(nil, ref.seq), val); err != nil {
				return err
			}
			ref.minT, ref.maxT = kept.MinTime, kept.MaxTime
		}
		if n == 0 {
			minT = ref.minT
		}
		out = appendChunkRef(out, ref, prev)
		prev = ref.maxT
		n++
	}
	if n == 0 {
		return removeSeries(r, v.id, v.enc)
	}
	if err = r.chunkRefs.Put(idKey, a.copy(out)); err != nil {
		return err
	}
	return r.seriesTime.Put(idKey, appendSeriesTime(a.alloc(seriesTimeLen), minT, prev))
}
