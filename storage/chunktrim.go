package storage

import (
	"fmt"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// ChunkWithout returns c re-encoded as a new chunk of its encoding without the samples
// for which deleted is true, with n the number of samples left and dropped
// whether any sample was removed. out is meaningful only when n > 0. The
// ingester masks its in-memory chunks with it and the store trims persisted
// ones, so both delete with the same sample-level semantics.
func ChunkWithout(c Chunk, deleted func(t int64) bool) (out Chunk, n int, dropped bool, err error) {
	if c.Encoding != chunkenc.EncXOR {
		return chunkWithoutAny(c, deleted) // histogram.go
	}
	src, err := chunkenc.FromData(c.Encoding, c.Data)
	if err != nil {
		return Chunk{}, 0, false, fmt.Errorf("%w: decode chunk [%d, %d]: %v", ErrCorrupt, c.MinTime, c.MaxTime, err)
	}
	dst := chunkenc.NewXORChunk()
	app, err := dst.Appender()
	if err != nil {
		return Chunk{}, 0, false, err
	}
	out = Chunk{Encoding: chunkenc.EncXOR}
	it := src.Iterator(nil)
	for it.Next() == chunkenc.ValFloat {
		t, v := it.At()
		if deleted(t) {
			dropped = true
			continue
		}
		if n == 0 {
			out.MinTime = t
		}
		out.MaxTime = t
		app.Append(0, t, v)
		n++
	}
	if err := it.Err(); err != nil {
		return Chunk{}, 0, false, fmt.Errorf("%w: iterate chunk [%d, %d]: %v", ErrCorrupt, c.MinTime, c.MaxTime, err)
	}
	out.Data = dst.Bytes()
	return out, n, dropped, nil
}
