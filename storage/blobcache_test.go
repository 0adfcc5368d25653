package storage

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// TestBlobCacheLRU checks the cache alone: least recently used out first,
// the bound kept, oversized blobs refused, a closed part's blobs dropped.
func TestBlobCacheLRU(t *testing.T) {
	blob := func(b byte) []byte { return []byte{b, b, b, b} }
	size := int64(4 + blobEntryOverhead)
	c := NewBlobCache(3 * size)
	require.Nil(t, NewBlobCache(0), "0 disables")
	k := func(part uint64, n uint32) blobKey { return blobKey{part: part, blob: n} }
	c.put(k(1, 0), blob(0))
	c.put(k(1, 1), blob(1))
	c.put(k(2, 0), blob(2))
	got, ok := c.get(k(1, 0)) // now the most recent
	require.True(t, ok)
	require.Equal(t, blob(0), got)
	c.put(k(2, 1), blob(3)) // evicts (1, 1)
	_, ok = c.get(k(1, 1))
	require.False(t, ok)
	for key, want := range map[blobKey][]byte{k(1, 0): blob(0), k(2, 0): blob(2), k(2, 1): blob(3)} {
		got, ok := c.get(key)
		require.True(t, ok, "%+v", key)
		require.Equal(t, want, got)
	}
	_, ok = c.get(blobKey{part: 1, tenant: 1, blob: 0})
	require.False(t, ok, "another tenant of the part")
	c.put(k(3, 0), make([]byte, 3*size)) // larger than the bound
	_, ok = c.get(k(3, 0))
	require.False(t, ok)
	c.dropPart(2)
	st := c.Stats()
	require.Equal(t, BlobCacheStats{Hits: 4, Misses: 5, Evictions: 1, Blobs: 1, Bytes: size, MaxBytes: 3 * size}, st)
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(fmt.Sprintf(`
# HELP argus_ingester_persisted_blob_cache_hits_total Reads of a sealed part's chunk blob served decompressed from the blob cache.
# TYPE argus_ingester_persisted_blob_cache_hits_total counter
argus_ingester_persisted_blob_cache_hits_total 4
# HELP argus_ingester_persisted_blob_cache_misses_total Reads of a sealed part's compressed chunk blob that had to decompress it.
# TYPE argus_ingester_persisted_blob_cache_misses_total counter
argus_ingester_persisted_blob_cache_misses_total 5
# HELP argus_ingester_persisted_blob_cache_evictions_total Blobs evicted from the blob cache to stay under its bound.
# TYPE argus_ingester_persisted_blob_cache_evictions_total counter
argus_ingester_persisted_blob_cache_evictions_total 1
# HELP argus_ingester_persisted_blob_cache_bytes Bytes of decompressed blobs in the blob cache, with a per-blob overhead.
# TYPE argus_ingester_persisted_blob_cache_bytes gauge
argus_ingester_persisted_blob_cache_bytes %d
# HELP argus_ingester_persisted_blob_cache_max_bytes Bound on the bytes of the blob cache (-ingester.persisted-blob-cache-size).
# TYPE argus_ingester_persisted_blob_cache_max_bytes gauge
argus_ingester_persisted_blob_cache_max_bytes %d
`, size, 3*size))))
	var nilCache *BlobCache
	nilCache.dropPart(1)
	require.Equal(t, BlobCacheStats{}, nilCache.Stats())
}

// blobCacheTestDB fills a DB with 12 hours of 60 series of two tenants,
// sealed into level-1 parts of many small blobs, and returns it with its
// model.
func blobCacheTestDB(t *testing.T, cache *BlobCache) (*DB, string, model) {
	smallBlobs(t, 2048)
	db, dir := newTestDB(t, DBOptions{BlobCache: cache})
	m := model{}
	for h := int64(0); h < 12; h++ {
		for _, tenant := range []string{"a", "b"} {
			batch := genBatch(t, tenant, 60, h*hourMs, (h+1)*hourMs, 15_000, 30*60_000)
			require.NoError(t, db.Append(tenant, batch))
			m.add(t, tenant, batch)
		}
	}
	require.NoError(t, db.Compact(context.Background(), 12*hourMs))
	return db, dir, m
}

// randomRead returns a random Select of the blob cache tests: a tenant,
// a range and matchers, mostly point lookups.
func randomRead(rng *rand.Rand) (string, int64, int64, []*labels.Matcher) {
	tenant := []string{"a", "b"}[rng.IntN(2)]
	// On the samples' 15 s grid: a chunk overlapping the range has a
	// sample in it, as the model assumes.
	mint := (rng.Int64N(14*hourMs) - hourMs) / 15_000 * 15_000
	maxt := mint + rng.Int64N(6*hourMs)/15_000*15_000
	var ms []*labels.Matcher
	switch rng.IntN(4) {
	case 0:
		ms = append(ms, labels.MustNewMatcher(labels.MatchRegexp, "instance", fmt.Sprintf("host-%d.*", rng.IntN(6))))
	default:
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, "instance", fmt.Sprintf("host-%d", rng.IntN(60))))
	}
	return tenant, mint, maxt, ms
}

// requireCacheLive checks that every blob in cache is of a part db holds.
func requireCacheLive(t *testing.T, db *DB, cache *BlobCache) {
	t.Helper()
	live := map[uint64]bool{}
	db.mu.RLock()
	for _, p := range db.parts {
		if sp, ok := p.r.(*part); ok {
			live[sp.id] = true
		}
	}
	db.mu.RUnlock()
	cache.mu.Lock()
	defer cache.mu.Unlock()
	for k := range cache.entries {
		require.True(t, live[k.part], "blob %+v of a part no longer in the DB", k)
	}
}

// TestBlobCacheSameResults reads the same DB with a small cache and
// without one, at random, and compares both with each other and with the
// model; callers scribbling over the chunk data Select returned must not
// change later results.
func TestBlobCacheSameResults(t *testing.T) {
	cache := NewBlobCache(8 * (2048 + 1024))
	db, dir, m := blobCacheTestDB(t, cache)
	plain := openTestDB(t, copyDir(t, dir), DBOptions{})
	rng := rand.New(rand.NewPCG(1, 2))
	for range 400 {
		tenant, mint, maxt, ms := randomRead(rng)
		want, err := plain.Select(tenant, mint, maxt, SelectOptions{}, ms...)
		require.NoError(t, err)
		got, err := db.Select(tenant, mint, maxt, SelectOptions{}, ms...)
		require.NoError(t, err)
		require.Equal(t, want, got, "%s [%d, %d] %v", tenant, mint, maxt, ms)
		for _, s := range got {
			for _, c := range s.Chunks {
				clear(c.Data)
			}
		}
		requireSelect(t, db, m, tenant, mint, maxt, ms...)
	}
	st := cache.Stats()
	t.Logf("%+v", st)
	require.Positive(t, st.Hits)
	require.Positive(t, st.Evictions, "the bound is a few blobs")
	require.LessOrEqual(t, st.Bytes, st.MaxBytes)
	require.Zero(t, plain.opts.BlobCache.Stats().Misses)
}

// TestBlobCacheCompactionAndRetention reads through the cache while
// compaction replaces the level-1 parts by a level-2 one and retention
// removes parts: the cache never holds a blob of a part the DB no longer
// has, and reads stay exact.
func TestBlobCacheCompactionAndRetention(t *testing.T) {
	ctx := context.Background()
	cache := NewBlobCache(1 << 30)
	db, _, m := blobCacheTestDB(t, cache)
	for _, tenant := range []string{"a", "b"} {
		requireSelect(t, db, m, tenant, all[0], all[1])
	}
	require.Positive(t, cache.Stats().Blobs)
	requireCacheLive(t, db, cache)
	// A day later the twelve level-1 parts merge into a level-2 one.
	for h := int64(24); h < 26; h++ {
		batch := genBatch(t, "a", 60, h*hourMs, (h+1)*hourMs, 15_000, 30*60_000)
		require.NoError(t, db.Append("a", batch))
		m.add(t, "a", batch)
	}
	require.NoError(t, db.Compact(ctx, 26*hourMs))
	levels := map[int]int{}
	for _, p := range db.Partitions() {
		levels[p.Level]++
	}
	require.Equal(t, map[int]int{1: 1, 2: 1}, levels)
	requireCacheLive(t, db, cache)
	for _, tenant := range []string{"a", "b"} {
		requireSelect(t, db, m, tenant, all[0], all[1])
	}
	require.NoError(t, db.ApplyRetention(ctx, RetentionPolicy{MaxBytes: 1}))
	require.Len(t, db.Partitions(), 1, "the newest partition stays")
	requireCacheLive(t, db, cache)
	m.deleteRange("a", math.MinInt64, 24*hourMs-1)
	delete(m, "b")
	requireSelect(t, db, m, "a", all[0], all[1])
	requireSelect(t, db, m, "b", all[0], all[1])
}

// TestBlobCacheSameNameNewFile replaces a part file by another of the
// same name while the first is still open: a cache shared by both opens
// serves each its own bytes.
func TestBlobCacheSameNameNewFile(t *testing.T) {
	smallBlobs(t, 2048)
	cache := NewBlobCache(1 << 30)
	path := filepath.Join(t.TempDir(), partitionName(1, 0, 2*hourMs-1, 1))
	write := func(job string, step int64) (*part, model) {
		batch := genBatch(t, job, 30, 0, 2*hourMs, step, 30*60_000)
		sortSeries(batch)
		m := model{}
		m.add(t, "t", batch)
		require.NoError(t, writePart(path, partMeta{MaxTime: 2*hourMs - 1, Level: 1}, memSource{"t": batch}, partWriteOptions{Compress: true, NoSync: true}))
		p, err := openPart(path)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, p.Close()) })
		p.blobs = cache
		return p, m
	}
	check := func(p *part, m model) {
		for i := range 30 {
			ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "instance", fmt.Sprintf("host-%d", i))}
			got, err := p.Select("t", all[0], all[1], SelectOptions{}, ms)
			require.NoError(t, err)
			want := m.selectModel("t", all[0], all[1], ms...)
			require.Len(t, got, 1)
			var samples []sample
			for _, c := range got[0].Chunks {
				samples = append(samples, chunkSamples(t, c)...)
			}
			require.Equal(t, want[0].lbls.String(), got[0].Labels.String())
			requireSameSamples(t, want[0].samples, samples)
		}
	}
	old, oldModel := write("old", 15_000)
	check(old, oldModel)
	cur, curModel := write("new", 10_000) // renamed over the open file
	check(cur, curModel)
	check(old, oldModel)
	require.Positive(t, cache.Stats().Hits)
}

// TestBlobCacheConcurrentReaders reads at random from several goroutines
// through a cache that evicts all the time (run under -race).
func TestBlobCacheConcurrentReaders(t *testing.T) {
	cache := NewBlobCache(4 * (2048 + 1024))
	db, dir, _ := blobCacheTestDB(t, cache)
	plain := openTestDB(t, copyDir(t, dir), DBOptions{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for range 100 {
				tenant, mint, maxt, ms := randomRead(rng)
				want, err := plain.Select(tenant, mint, maxt, SelectOptions{}, ms...)
				if err != nil {
					errs <- err
					return
				}
				got, err := db.Select(tenant, mint, maxt, SelectOptions{}, ms...)
				if err != nil {
					errs <- err
					return
				}
				if fmt.Sprint(want) != fmt.Sprint(got) {
					errs <- fmt.Errorf("%s [%d, %d] %v: got %v, want %v", tenant, mint, maxt, ms, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	st := cache.Stats()
	require.Positive(t, st.Hits)
	require.Positive(t, st.Evictions)
}

// TestBlobCacheRebuiltXOR reads the whole range twice for the wire (XOR
// bytes) through the cache: the second read is served from the series'
// XOR chunks the first one rebuilt (no miss: nothing decompressed), returns the same bytes
// as a DB without a cache, and the all-in-one's read (KeepTranscoded) is
// unaffected by them.
func TestBlobCacheRebuiltXOR(t *testing.T) {
	cache := NewBlobCache(1 << 30)
	db, dir, m := blobCacheTestDB(t, cache)
	plain := openTestDB(t, copyDir(t, dir), DBOptions{})
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "instance", "host-1.*")}
	want, err := plain.Select("a", all[0], all[1], SelectOptions{}, ms...)
	require.NoError(t, err)
	got, err := db.Select("a", all[0], all[1], SelectOptions{}, ms...)
	require.NoError(t, err)
	require.Equal(t, want, got)
	xorEntries := func() (n int) {
		cache.mu.Lock()
		defer cache.mu.Unlock()
		for k := range cache.entries {
			if k.kind == kindXORSeries {
				n++
			}
		}
		return n
	}
	n := xorEntries()
	require.Positive(t, n, "the series' rebuilt XOR chunks are kept")
	before := cache.Stats()
	got, err = db.Select("a", all[0], all[1], SelectOptions{}, ms...)
	require.NoError(t, err)
	require.Equal(t, want, got)
	after := cache.Stats()
	require.Equal(t, before.Misses, after.Misses, "nothing rebuilt or decompressed again")
	require.GreaterOrEqual(t, after.Hits, before.Hits+uint64(n), "a hit per series and part (and per series group)")
	require.Equal(t, n, xorEntries())
	requireSelect(t, db, m, "a", all[0], all[1], ms...)
}
