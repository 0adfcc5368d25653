package storage

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
)

// newTestStore opens a store in a temporary directory. Cleanup closes it and
// runs Check on its file.
func newTestStore(t testing.TB) (*ChunkStore, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chunks.db")
	return openTestStore(t, path), path
}

// openTestStore opens the store at path. Cleanup closes it and runs Check.
func openTestStore(t testing.TB, path string) *ChunkStore {
	t.Helper()
	s, err := Open(path, Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, s.Close())
		require.NoError(t, Check(path))
	})
	return s
}

// sample is one float sample.
type sample struct {
	t int64
	v float64
}

// xorChunk encodes samples, which must be in time order, as one XOR chunk.
func xorChunk(t testing.TB, samples []sample) Chunk {
	t.Helper()
	require.NotEmpty(t, samples)
	c := chunkenc.NewXORChunk()
	app, err := c.Appender()
	require.NoError(t, err)
	for _, s := range samples {
		app.Append(0, s.t, s.v)
	}
	return Chunk{
		MinTime:  samples[0].t,
		MaxTime:  samples[len(samples)-1].t,
		Encoding: chunkenc.EncXOR,
		Data:     c.Bytes(),
	}
}

// chunkSamples decodes the samples of c.
func chunkSamples(t testing.TB, c Chunk) []sample {
	t.Helper()
	ch, err := NewChunk(c)
	require.NoError(t, err)
	var out []sample
	it := ch.Iterator(nil)
	for it.Next() == chunkenc.ValFloat {
		ts, v := it.At()
		out = append(out, sample{ts, v})
	}
	require.NoError(t, it.Err())
	return out
}

// requireSameSamples compares samples exactly, NaN payloads included.
func requireSameSamples(t testing.TB, want, got []sample, msgAndArgs ...any) {
	t.Helper()
	require.Len(t, got, len(want), msgAndArgs...)
	for i := range want {
		require.Equal(t, want[i].t, got[i].t, msgAndArgs...)
		require.Equal(t, math.Float64bits(want[i].v), math.Float64bits(got[i].v), msgAndArgs...)
	}
}
