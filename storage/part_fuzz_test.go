package storage

import (
	"encoding/binary"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
)

// The fuzz targets of the part decoders: none may panic on any input, and
// what decodes must re-encode to something that decodes the same.

func FuzzPartSymbolBlock(f *testing.F) {
	f.Add(encodeSymbolBlock(nil, []string{"__name__", "a", "ab", "abc", "job", "x\xffy"}))
	f.Add([]byte{2, 0, 1, 'a', 5, 0})
	f.Add([]byte{33})
	f.Fuzz(func(t *testing.T, v []byte) {
		syms, err := decodeSymbolBlock(nil, v)
		if err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			return
		}
		require.LessOrEqual(t, len(syms), symbolsPerBlock)
		again, err := decodeSymbolBlock(nil, encodeSymbolBlock(nil, syms))
		require.NoError(t, err)
		require.Equal(t, syms, again)
	})
}

func FuzzPartPostings(f *testing.F) {
	f.Add(encodePostings(nil, []uint32{0, 1, 5, 1000, 1 << 30}), uint64(1<<31))
	f.Add([]byte{3, 0, 0, 0}, uint64(2))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, uint64(10))
	f.Fuzz(func(t *testing.T, v []byte, limit uint64) {
		ids, err := decodePostings(nil, v, limit)
		if err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			return
		}
		ids32 := make([]uint32, len(ids))
		for i, id := range ids {
			require.Less(t, id, limit)
			require.LessOrEqual(t, id, uint64(math.MaxUint32))
			if i > 0 {
				require.Greater(t, id, ids[i-1])
			}
			ids32[i] = uint32(id)
		}
		again, err := decodePostings(nil, encodePostings(nil, ids32), limit)
		require.NoError(t, err)
		require.Equal(t, ids, again)
		// Intersecting with every other ID decodes as far as needed only.
		var some []uint64
		for i := uint64(0); i < min(limit, 3000); i += 2 {
			some = append(some, i)
		}
		got, err := intersectEncoded(slices.Clone(some), v, limit)
		require.NoError(t, err)
		require.Equal(t, intersect(some, ids), got)
	})
}

// FuzzPartSeriesEntry decodes a series entry and locates its chunks in
// blobs whose lengths also come from the input: the chunk metas and blob
// references of a part.
func FuzzPartSeriesEntry(f *testing.F) {
	valid := binary.AppendUvarint(nil, 2)
	for _, x := range []uint64{0, 3, 1, 2, 2, 1, 0, 5, 0} { // labels, chunks, blob, offset
		valid = binary.AppendUvarint(valid, x)
	}
	valid = append(valid, 10, 20, 1, 30, 4, 5, 1, 40) // two chunks
	f.Add(valid, int64(-100), uint64(4), []byte{70, 30})
	f.Add([]byte{1, 0, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 1, 2}, int64(math.MaxInt64), uint64(1), []byte{})
	f.Fuzz(func(t *testing.T, v []byte, baseT int64, symbols uint64, blobs []byte) {
		var e seriesEntry
		err := decodeSeriesEntry(&e, v, baseT, symbols)
		if err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			return
		}
		require.NotEmpty(t, e.labels)
		require.NotEmpty(t, e.chunks)
		for i, c := range e.chunks {
			require.LessOrEqual(t, c.minT, c.maxT)
			if i > 0 {
				require.Greater(t, c.minT, e.chunks[i-1].maxT)
			}
		}
		for _, s := range e.labels {
			require.Less(t, uint64(s), symbols)
		}
		err = locateChunks(&e, func(n uint32) (int, bool, error) {
			if int(n) >= len(blobs) {
				return 0, false, nil
			}
			return int(blobs[n]), true, nil
		})
		if err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			return
		}
		for _, c := range e.chunks {
			require.LessOrEqual(t, int(c.off)+int(c.len), int(blobs[c.blob]))
		}
	})
}

func FuzzPartBlob(f *testing.F) {
	raw := []byte("some chunk bytes, some chunk bytes, some chunk bytes")
	f.Add(encodeBlob(nil, raw, false))
	f.Add(encodeBlob(nil, raw, true))
	old := blobCodec
	blobCodec = codecS2
	f.Add(encodeBlob(nil, raw, true))
	blobCodec = old
	f.Add([]byte{1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, v []byte) {
		for _, verify := range []bool{false, true} {
			got, err := decodeBlob(v, verify)
			if err != nil {
				require.ErrorIs(t, err, ErrCorrupt)
				continue
			}
			n, err := blobRawLen(v)
			require.NoError(t, err)
			require.Len(t, got, n)
			again, err := decodeBlob(encodeBlob(nil, got, true), true)
			require.NoError(t, err)
			require.Equal(t, got, again)
		}
	})
}

func FuzzPartMeta(f *testing.F) {
	f.Add(encodePartMeta(partMeta{MinTime: -5, MaxTime: 7, Level: 2, Sources: []string{"a", "bc"}}))
	f.Add(encodeTenantHeader(tenantHeader{series: 3, chunks: 4, samples: 5, minT: 1, maxT: 9, symbols: 7, blobs: 1, bytes: 100}, nil))
	f.Fuzz(func(t *testing.T, v []byte) {
		if m, err := decodePartMeta(v); err == nil {
			again, err := decodePartMeta(encodePartMeta(m))
			require.NoError(t, err)
			require.Equal(t, m, again)
		} else {
			require.ErrorIs(t, err, ErrCorrupt)
		}
		if h, _, err := decodeTenantHeader(v); err == nil {
			again, _, err := decodeTenantHeader(encodeTenantHeader(h, nil))
			require.NoError(t, err)
			h.crc, again.crc = 0, 0
			require.Equal(t, h, again)
		} else {
			require.ErrorIs(t, err, ErrCorrupt)
		}
	})
}

// FuzzPartRoundTrip writes the series of a fuzz input (as
// FuzzChunkStoreRoundTrip reads them) to a part and reads them back.
func FuzzPartRoundTrip(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x01\x00\x00job\x05api\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("\x03\x02\x00\x03up\x01\x03\x02b\xff\xc8\x01\x80\x00\x00\x00\x00\x00\x00\x00" +
		"\x01\x00\x01\x05\x02\x00\x03\x07\x01\x00\x00\x04\x01\x02\x03\x00x\x00\x00\x00\x00\x00\x00\xff\x7f"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMaxInput {
			t.Skip("input too large")
		}
		model := decodeFuzzSeries(data)
		var series []Series
		for _, fs := range model {
			series = append(series, Series{Labels: fs.lbls, Chunks: cutChunks(t, fs.samples)})
		}
		sortSeries(series)
		src := memSource{"t": series}
		compress := len(data)%2 == 1
		path := filepath.Join(t.TempDir(), "part")
		require.NoError(t, writePart(path, partMeta{}, src, partWriteOptions{NoSync: true, Compress: compress}))
		p, err := openPart(path)
		require.NoError(t, err)
		defer p.Close()
		got, err := p.Select("t", math.MinInt64, math.MaxInt64, SelectOptions{}, nil)
		require.NoError(t, err)
		require.Equal(t, series, got)
		for _, s := range series {
			var ms []*labels.Matcher
			s.Labels.Range(func(l labels.Label) { ms = append(ms, eq(l.Name, l.Value)) })
			last := s.Chunks[len(s.Chunks)-1]
			got, err := p.Select("t", last.MaxTime, last.MaxTime, SelectOptions{}, ms)
			require.NoError(t, err)
			require.Equal(t, []Series{{Labels: s.Labels, Chunks: []Chunk{last}}}, got)
			lt, ok, err := p.LastTime("t", s.Labels)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, last.MaxTime, lt)
		}
		names, err := p.LabelNames("t", nil)
		require.NoError(t, err)
		require.True(t, slices.IsSorted(names))
		require.NoError(t, checkPart(path))
	})
}

// FuzzPartTranscode rebuilds XOR chunks from arbitrary transcoded bytes,
// and transcodes arbitrary chunk bytes: both must fail cleanly or round
// trip.
func FuzzPartTranscode(f *testing.F) {
	c := xorChunk(f, []sample{{1000, 1}, {16000, 2}, {31000, 2.5}, {46000, math.NaN()}})
	tc, ok := transcodeXOR(nil, c.Data)
	require.True(f, ok)
	f.Add(tc)
	f.Add(c.Data)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		tc := &TranscodedChunk{}
		tc.Reset(v)
		it := tc.Iterator(nil)
		direct := iterSamplesOrErr(it)
		if xor, ok := untranscodeXOR(v); ok {
			// Read directly, the samples are those of the rebuilt chunk.
			require.NoError(t, it.Err())
			requireSameSamples(t, chunkSamples(t, Chunk{Encoding: chunkenc.EncXOR, Data: xor}), direct)
			// What the rebuild writes is what chunkenc writes for the same
			// samples.
			require.Equal(t, xorChunk(t, chunkSamples(t, Chunk{Encoding: chunkenc.EncXOR, Data: xor})).Data, xor)
			again, ok := transcodeXOR(nil, xor)
			require.True(t, ok)
			back, ok := untranscodeXOR(again)
			require.True(t, ok)
			require.Equal(t, xor, back)
		}
		if it.Err() != nil {
			_, ok := untranscodeXOR(v)
			require.False(t, ok, "the rebuild takes what the iterator refuses")
		}
		if tc, ok := transcodeXOR(nil, v); ok {
			back, ok := untranscodeXOR(tc)
			require.True(t, ok)
			require.Equal(t, v, back)
		}
	})
}

func FuzzPartSeriesGroup(f *testing.F) {
	f.Add(encodeSeriesGroup([][]byte{{1, 2, 3}, {4}, {5, 6}}, false))
	f.Add(encodeSeriesGroup([][]byte{{1, 2, 3}, {4}, {5, 6}}, true))
	f.Add([]byte{0, 2, 1, 1, 7})
	f.Fuzz(func(t *testing.T, v []byte) {
		data, offs, err := decodeSeriesGroup(v, nil)
		if err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			return
		}
		require.GreaterOrEqual(t, len(offs), 2)
		var entries [][]byte
		for i := 0; i+1 < len(offs); i++ {
			require.LessOrEqual(t, offs[i], offs[i+1])
			entries = append(entries, data[offs[i]:offs[i+1]])
		}
		require.Equal(t, len(data), offs[len(offs)-1])
		data2, offs2, err := decodeSeriesGroup(encodeSeriesGroup(entries, true), nil)
		require.NoError(t, err)
		for i := range entries {
			require.Equal(t, entries[i], data2[offs2[i]:offs2[i+1]])
		}
	})
}

// FuzzPartEncodeXOR checks that encodeXOR writes what chunkenc writes.
func FuzzPartEncodeXOR(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x10\x00\x00\x00\x00\x00\x00\x00\x01\x00\x05\x01\x02\x03\x04\x05\x06\x07\x08\x09\x00\x02\x01\x03\xff\x00\x11"))
	f.Fuzz(func(t *testing.T, data []byte) {
		samples := decodeFuzzSamples(&fuzzInput{b: data})
		ts := make([]int64, len(samples))
		vs := make([]uint64, len(samples))
		for i, s := range samples {
			ts[i], vs[i] = s.t, math.Float64bits(s.v)
		}
		require.Equal(t, xorChunk(t, samples).Data, encodeXOR(ts, vs))
	})
}

// iterSamplesOrErr reads what is left of it, stopping at an error.
func iterSamplesOrErr(it chunkenc.Iterator) []sample {
	var out []sample
	for it.Next() == chunkenc.ValFloat {
		ts, v := it.At()
		out = append(out, sample{ts, v})
	}
	return out
}
