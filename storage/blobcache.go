package storage

import (
	"container/list"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// BlobCache keeps decompressed chunk blobs of sealed parts, their
// decompressed series groups and the XOR chunks rebuilt from their
// transcoded chunks for the wire, least recently used first out, within a
// bound on their bytes. A point lookup in a compressed part decompresses a
// whole blob (256 KiB) for the ~1 KB of its series, and the group of 64
// series entries that locates it; dashboards read the same recent series
// at every refresh: the cache turns the repeats into map lookups. One cache may serve any
// number of DBs (DBOptions.BlobCache); only DB.Select reads through it, so
// that compaction and retention, which read each blob once, do not evict
// what queries read again.
//
// Entries are keyed by the identity of an open part (a number no other
// open of any file in this process gets), its tenant and the blob number,
// never by file name: a part replaced by compaction or removed by
// retention and a new file of the same name can never share an entry.
// Closing a part drops its entries.
//
// An ingester sends a querier of another process XOR chunks, which it
// rebuilds from a compressed part's transcoded form at a cost close to a
// decoding of them (part_xor.go); a range read a dashboard repeats would
// pay it at each refresh. Select (without KeepTranscoded) keeps the chunks
// of each series whose chunks in the part all lie in the range read (a
// day's part read over a day), one entry per series, and a repeat copies
// them without loading a blob. They are XOR, larger than the transcoded
// blob they come from, which the cache may then drop: a repeated 24h read
// of 2K counters holds about 20 MiB of them.
//
// Cached blobs are shared and read-only: callers copy what they keep
// (Select copies chunk data into its result) and never write into them.
// All methods are safe for concurrent use; a nil *BlobCache caches nothing.
type BlobCache struct {
	maxBytes int64

	mu      sync.Mutex
	entries map[blobKey]*list.Element // guarded by mu; values *blobEntry
	lru     list.List                 // guarded by mu; most recently used first
	bytes   int64                     // guarded by mu; charged bytes of entries

	hits, misses, evictions atomic.Uint64
}

// blobKey names a blob, a series group or a rebuilt XOR chunk of one open
// part.
type blobKey struct {
	part   uint64 // part.id
	tenant uint32 // index in part.tenants
	blob   uint32 // the blob's or the series group's number
	off    uint32 // kindXORSeries: its first chunk's offset in blob
	kind   byte   // kindBlob, kindSeries or kindXORSeries
}

// kindXORSeries keys the chunks of a series as read for the wire (the
// transcoded ones rebuilt as XOR, part_transcode.go) in the cache, by the
// location of the series' first chunk; it names no key of a part file.
const kindXORSeries = 'X'

type blobEntry struct {
	key  blobKey
	data []byte
}

// blobEntryOverhead is charged per entry on top of its data: the map
// slot, the list element and the entry.
const blobEntryOverhead = 160

// DefaultBlobCacheSize is the bound of the ingester's cache unless
// configured (-ingester.persisted-blob-cache-size): 256 blobs of 256 KiB.
const DefaultBlobCacheSize = 64 << 20

// NewBlobCache returns a cache of at most maxBytes of blobs, or nil (no
// cache) if maxBytes is not positive.
func NewBlobCache(maxBytes int64) *BlobCache {
	if maxBytes <= 0 {
		return nil
	}
	return &BlobCache{maxBytes: maxBytes, entries: map[blobKey]*list.Element{}}
}

// partIDs numbers the opens of parts, from 1, for the keys of BlobCache.
var partIDs atomic.Uint64

// get returns the cached blob k, read-only.
func (c *BlobCache) get(k blobKey) ([]byte, bool) {
	c.mu.Lock()
	el, ok := c.entries[k]
	if ok {
		c.lru.MoveToFront(el)
	}
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	c.hits.Add(1)
	return el.Value.(*blobEntry).data, true
}

// put caches data, just decompressed, as blob k (a miss), evicting the
// least recently used blobs past the bound. data must not be written again
// by anyone. A blob larger than the bound is not kept.
func (c *BlobCache) put(k blobKey, data []byte) {
	c.misses.Add(1)
	size := int64(len(data)) + blobEntryOverhead
	if size > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; ok { // another reader loaded it meanwhile
		return
	}
	c.entries[k] = c.lru.PushFront(&blobEntry{key: k, data: data})
	c.bytes += size
	for c.bytes > c.maxBytes {
		c.remove(c.lru.Back())
		c.evictions.Add(1)
	}
}

// remove drops the entry of el. Callers hold mu.
func (c *BlobCache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*blobEntry)
	delete(c.entries, e.key)
	c.bytes -= int64(len(e.data)) + blobEntryOverhead
}

// dropPart drops every blob of the open part id (which is being closed: no
// reader can ask for its blobs again). It walks the whole cache: a few
// hundred entries at the default bound, for each part a compaction or
// retention closes.
func (c *BlobCache) dropPart(id uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, el := range c.entries {
		if k.part == id {
			c.remove(el)
		}
	}
}

// BlobCacheStats are a BlobCache's counters.
type BlobCacheStats struct {
	Hits, Misses, Evictions uint64
	Blobs                   int
	Bytes, MaxBytes         int64
}

// Stats returns the counters of c (zero for a nil cache).
func (c *BlobCache) Stats() BlobCacheStats {
	if c == nil {
		return BlobCacheStats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return BlobCacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load(),
		Blobs: len(c.entries), Bytes: c.bytes, MaxBytes: c.maxBytes}
}

var (
	blobCacheHitsDesc = prometheus.NewDesc("argus_ingester_persisted_blob_cache_hits_total",
		"Reads of a sealed part's chunk blob served decompressed from the blob cache.", nil, nil)
	blobCacheMissesDesc = prometheus.NewDesc("argus_ingester_persisted_blob_cache_misses_total",
		"Reads of a sealed part's compressed chunk blob that had to decompress it.", nil, nil)
	blobCacheEvictionsDesc = prometheus.NewDesc("argus_ingester_persisted_blob_cache_evictions_total",
		"Blobs evicted from the blob cache to stay under its bound.", nil, nil)
	blobCacheBytesDesc = prometheus.NewDesc("argus_ingester_persisted_blob_cache_bytes",
		"Bytes of decompressed blobs in the blob cache, with a per-blob overhead.", nil, nil)
	blobCacheMaxBytesDesc = prometheus.NewDesc("argus_ingester_persisted_blob_cache_max_bytes",
		"Bound on the bytes of the blob cache (-ingester.persisted-blob-cache-size).", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *BlobCache) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{blobCacheHitsDesc, blobCacheMissesDesc, blobCacheEvictionsDesc, blobCacheBytesDesc, blobCacheMaxBytesDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *BlobCache) Collect(ch chan<- prometheus.Metric) {
	st := c.Stats()
	ch <- prometheus.MustNewConstMetric(blobCacheHitsDesc, prometheus.CounterValue, float64(st.Hits))
	ch <- prometheus.MustNewConstMetric(blobCacheMissesDesc, prometheus.CounterValue, float64(st.Misses))
	ch <- prometheus.MustNewConstMetric(blobCacheEvictionsDesc, prometheus.CounterValue, float64(st.Evictions))
	ch <- prometheus.MustNewConstMetric(blobCacheBytesDesc, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(blobCacheMaxBytesDesc, prometheus.GaugeValue, float64(st.MaxBytes))
}
