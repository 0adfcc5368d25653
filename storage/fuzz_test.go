package storage

import (
	"encoding/binary"
	"math"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/stretchr/testify/require"
)

const (
	// fuzzMaxInput bounds the inputs FuzzChunkStoreRoundTrip runs.
	fuzzMaxInput = 4096
	// fuzzChunkSamples is where the fuzz target cuts chunks, as the head does.
	fuzzChunkSamples = 120
)

// fuzzNames are the label names fuzz inputs pick from (names cannot hold
// arbitrary bytes; values can).
var fuzzNames = []string{"__name__", "job", "instance", "a", "b", "le"}

// fuzzInput reads fuzz bytes; past the end it reads zeros.
type fuzzInput struct{ b []byte }

func (in *fuzzInput) byte() byte {
	if len(in.b) == 0 {
		return 0
	}
	c := in.b[0]
	in.b = in.b[1:]
	return c
}

func (in *fuzzInput) bytes(n int) []byte {
	n = min(n, len(in.b))
	out := in.b[:n]
	in.b = in.b[n:]
	return out
}

func (in *fuzzInput) uint64() uint64 {
	var buf [8]byte
	copy(buf[:], in.bytes(8))
	return binary.LittleEndian.Uint64(buf[:])
}

// fuzzSeries is one series of a fuzz input and its samples, in time order.
type fuzzSeries struct {
	lbls    labels.Labels
	samples []sample
}

// decodeFuzzSeries turns fuzz bytes into 1 to 4 distinct series with 1 to
// 512 samples each, anywhere in the int64 time range, with arbitrary float
// bits (NaNs and stale markers included).
func decodeFuzzSeries(data []byte) []fuzzSeries {
	in := &fuzzInput{b: data}
	var out []fuzzSeries
	seen := map[string]bool{}
	for range 1 + in.byte()%4 {
		lb := labels.NewBuilder(labels.EmptyLabels())
		for range 1 + in.byte()%3 {
			name := fuzzNames[int(in.byte())%len(fuzzNames)]
			lb.Set(name, string(in.bytes(int(in.byte()%6)))) // "" deletes
		}
		lbls := lb.Labels()
		if lbls.IsEmpty() {
			lbls = labels.FromStrings("__name__", "empty")
		}
		samples := decodeFuzzSamples(in)
		if seen[lbls.String()] {
			continue
		}
		seen[lbls.String()] = true
		out = append(out, fuzzSeries{lbls: lbls, samples: samples})
	}
	return out
}

func decodeFuzzSamples(in *fuzzInput) []sample {
	n := 1 + int(in.byte()) + int(in.byte()&1)<<8
	t := int64(in.uint64())
	var (
		out []sample
		v   float64
	)
	for i := range n {
		if i > 0 {
			d := int64(1+int(in.byte())) << (in.byte() % 32)
			if t > math.MaxInt64-d {
				break
			}
			t += d
		}
		switch in.byte() % 4 {
		case 0:
			v = math.Float64frombits(in.uint64())
		case 1:
			v = math.Float64frombits(value.StaleNaN)
		case 2:
			v += float64(in.byte())
		}
		out = append(out, sample{t, v})
	}
	return out
}

// cutChunks splits samples into chunks of at most fuzzChunkSamples.
func cutChunks(t testing.TB, samples []sample) []Chunk {
	var out []Chunk
	for len(samples) > 0 {
		n := min(len(samples), fuzzChunkSamples)
		out = append(out, xorChunk(t, samples[:n]))
		samples = samples[n:]
	}
	return out
}

func FuzzChunkStoreRoundTrip(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x01\x00\x00job\x05api\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("\x03\x02\x00\x03up\x01\x03\x02b\xff\xc8\x01\x80\x00\x00\x00\x00\x00\x00\x00" +
		"\x01\x00\x01\x05\x02\x00\x03\x07\x01\x00\x00\x04\x01\x02\x03\x00x\x00\x00\x00\x00\x00\x00\xff\x7f"))
	f.Add([]byte("\x02\x00\x00\x00\x10\x01\xff\xff\xff\xff\xff\xff\xff\x7f\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMaxInput {
			t.Skip("input too large")
		}
		model := decodeFuzzSeries(data)
		path := filepath.Join(t.TempDir(), "chunks.db")
		s, err := Open(path, Options{NoSync: true})
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, s.Close()) })

		// Batch i holds chunk i of every series that has one, so series are
		// created by the first batch and extended by the next ones.
		chunks := make([][]Chunk, len(model))
		for i, fs := range model {
			chunks[i] = cutChunks(t, fs.samples)
		}
		for round := 0; ; round++ {
			var batch []Series
			for i, fs := range model {
				if round < len(chunks[i]) {
					batch = append(batch, Series{Labels: fs.lbls, Chunks: chunks[i][round : round+1]})
				}
			}
			if len(batch) == 0 {
				break
			}
			require.NoError(t, s.Append(batch))
		}
		requireFuzzRoundTrip(t, s, model, chunks)
		requireFuzzPointSelect(t, s, model[0], chunks[0], data)
		require.NoError(t, s.Close())
		require.NoError(t, Check(path))
	})
}

// requireFuzzRoundTrip selects everything back and compares every sample.
func requireFuzzRoundTrip(t *testing.T, s *ChunkStore, model []fuzzSeries, chunks [][]Chunk) {
	got, err := s.Select(math.MinInt64, math.MaxInt64, SelectOptions{})
	require.NoError(t, err)
	require.Len(t, got, len(model))
	byLabels := map[string]int{}
	for i, fs := range model {
		byLabels[fs.lbls.String()] = i
	}
	for j, sr := range got {
		if j > 0 {
			require.Negative(t, labels.Compare(got[j-1].Labels, sr.Labels), "series not sorted")
		}
		i, ok := byLabels[sr.Labels.String()]
		require.True(t, ok, "unexpected series %s", sr.Labels)
		require.Equal(t, chunks[i], sr.Chunks)
		var samples []sample
		for _, c := range sr.Chunks {
			cs := chunkSamples(t, c)
			require.Equal(t, c.MinTime, cs[0].t)
			require.Equal(t, c.MaxTime, cs[len(cs)-1].t)
			samples = append(samples, cs...)
		}
		requireSameSamples(t, model[i].samples, samples, "series %s", sr.Labels)

		last, ok, err := s.LastTime(sr.Labels)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, model[i].samples[len(model[i].samples)-1].t, last)
	}
}

// requireFuzzPointSelect selects one sample's time with equality matchers on
// all labels of fs and expects exactly the chunk holding that sample.
func requireFuzzPointSelect(t *testing.T, s *ChunkStore, fs fuzzSeries, chunks []Chunk, data []byte) {
	idx := 0
	if len(data) > 0 {
		idx = int(data[len(data)-1]) * len(fs.samples) / 256
	}
	ts := fs.samples[idx].t
	var ms []*labels.Matcher
	fs.lbls.Range(func(l labels.Label) { ms = append(ms, eq(l.Name, l.Value)) })
	got, err := s.Select(ts, ts, SelectOptions{}, ms...)
	require.NoError(t, err)
	require.Equal(t, []Series{{Labels: fs.lbls, Chunks: chunks[idx/fuzzChunkSamples : idx/fuzzChunkSamples+1]}}, got)
}
