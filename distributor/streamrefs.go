package distributor

import (
	"encoding/binary"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/mem"

	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/limits"
)

// Series refs on a PushStream. At replication factor 3 the distributor
// wrote every series' labels (about 250 bytes) three times per sample, and
// each replica read and decoded them again: the largest costs of both after
// the stream itself (docs/benchmarks.md, "Cluster ingest"). A ClientPool
// therefore gives each series (its tenant and the bytes of its labels) a
// small ref, the same for every ingester (seriesDict), and each stream
// remembers which refs it has sent with their labels (pushStream.defined):
// the first push of a series on a stream sends its labels and defines its
// ref, later ones send the ref and the rest of the series (its samples),
// about 15 bytes. The ingester keeps the labels of each ref for the life of
// the stream (ingester/pushstream.go); a new stream starts with no refs on
// either side.
//
// # Why a ref cannot name the wrong series
//
//   - The dictionary is keyed by the exact bytes of the tenant and the
//     labels, not by a hash: two series share a ref only if they are the
//     same bytes of the same tenant. The ingester checks the tenant too.
//   - A ref is defined on a stream by the very request that first sends it
//     by ref or before it: encoding and sending happen under the stream's
//     sendMu, so the order refs are marked defined is the order the
//     ingester receives them, and the ingester registers a request's
//     definitions before it runs the request's Push (whatever it answers).
//   - A stream whose send fails is broken and never used again: refs never
//     outlive the stream they were defined on.
//   - Refs are sent only once the ingester's response headers say it takes
//     them (ingester.SeriesRefsHeader): an ingester of an older version,
//     which would ignore them, is sent labels.
//
// Only series the fast path read unchanged (their label fields raw[:labelsEnd])
// are given refs; any other is sent whole with ref 0. The dictionary holds
// at most maxStreamRefs series and forgets none: past that, new series are
// sent whole (an eviction needs every stream to drop the evicted refs, not
// done yet).
//
// # Known series skip label validation
//
// Checking a series' labels (seriesValidator.valid) and hashing them into
// its shard token cost the distributor more per series than the lookup of
// its ref. Once a stream sends refs (seriesDict.used), validate looks each
// fast-path series up first (knownSeries), with one read lock per push: a
// series validated before under equal label limits takes its ref and token
// from its entry and skips valid's label loop; its samples are still checked
// (the grace period), as is everything that is not in its label bytes.
// Every other series goes through valid, and once it passed is added, or its
// entry updated, with its token and the limits (rememberSeries); validate
// then hands the push's refs to refsOf, which does not look them up again.
// Why this cannot let an invalid series through:
//
//   - The key is the exact bytes of the tenant and of the label fields,
//     the only input of valid's label checks and of the token: a hit means
//     the same bytes were checked, and hashed, before.
//   - An entry records the label limits it passed under (labelLimits, by
//     value, not the *limits.Limits, which a reload of the runtime
//     overrides replaces): under other limits the series is checked again.
//   - Only a series valid passed is written with a token and limits; one it
//     refuses is decoded (its seriesRef.ts set, so not cacheable) and never
//     enters the dictionary that way. Entries refsOf adds (before validate
//     uses the dictionary) carry no limits and are checked like new ones.

// ingesterSeriesRefsHeader is the response header of an ingester's
// PushStream that says it takes series refs (ingester.SeriesRefsHeader;
// the distributor does not import the ingester).
const ingesterSeriesRefsHeader = "argus-series-refs"

// maxStreamRefs is the largest ref, the protocol's bound (argus.proto).
const maxStreamRefs = 1 << 20

// seriesDict gives each series a ref, and remembers the shard token of
// the series validate checked. It is safe for concurrent use.
type seriesDict struct {
	// used is set once a push looked up refs for a stream that takes them:
	// until then no push goes by ref, and validate does not pay for lookups.
	used atomic.Bool
	mu   sync.RWMutex
	refs map[string]dictEntry // guarded by mu: refKey to entry
}

// dictEntry is what seriesDict knows of a series: its ref, from 1, and if
// checked, the shard token and the label limits seriesValidator.valid
// passed it under.
type dictEntry struct {
	ref, token uint32
	lim        labelLimits
	checked    bool
}

// labelLimits are the limits valid's label checks read, comparable by
// value: an entry checked under other limits is checked again.
type labelLimits struct {
	names, nameLen, valueLen int32
}

// labelLimitsOf returns the label limits of lim, or ok false if one does
// not fit in 32 bits (validate then does not use the dictionary).
func labelLimitsOf(lim *limits.Limits) (_ labelLimits, ok bool) {
	fits := func(n int) bool { return n >= math.MinInt32 && n <= math.MaxInt32 }
	if !fits(lim.MaxLabelNamesPerSeries) || !fits(lim.MaxLabelNameLength) || !fits(lim.MaxLabelValueLength) {
		return labelLimits{}, false
	}
	return labelLimits{int32(lim.MaxLabelNamesPerSeries), int32(lim.MaxLabelNameLength), int32(lim.MaxLabelValueLength)}, true
}

// dictSource is a ClientFactory whose clients give series refs from a
// seriesDict (ClientPool): validate uses it to skip known series.
type dictSource interface {
	seriesDictionary() *seriesDict
}

// refKey appends the key of series s of tenant to b: the tenant's length
// and bytes, then the series' label fields.
func refKey(b []byte, tenantID string, raw []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(tenantID)))
	return append(append(b, tenantID...), raw...)
}

// cacheable reports whether s can be sent by ref.
func (s *seriesRef) cacheable() bool {
	return s.ts == nil && !s.symbolised && s.labelsEnd > 0 && int(s.labelsEnd) < len(s.raw)
}

// pushRefs are the refs of a push's series (by index in writeCtx.series,
// 0 for none), looked up once for all its streams.
type pushRefs struct {
	once sync.Once
	refs []uint32
	key  []byte
}

// reset readies p for the next push, keeping its memory.
func (p *pushRefs) reset() {
	p.once = sync.Once{}
	p.refs = p.refs[:0]
}

// refsOf returns the refs of wc's series, looking them up (and giving the
// new ones refs while the dictionary has room) on the first call of the
// push. The slice is read-only and valid while wc is held.
func (d *seriesDict) refsOf(wc *writeCtx) []uint32 {
	if !d.used.Load() {
		d.used.Store(true)
	}
	p := &wc.streamRefs
	p.once.Do(func() { p.refs, p.key = d.lookup(wc, p.refs, p.key) })
	return p.refs
}

// knownSeries sets the ref and token of each of wc's cacheable series that
// d holds checked under lk (see "Known series skip label validation"),
// under one read lock. The other series keep ref 0.
func (d *seriesDict) knownSeries(wc *writeCtx, tenantID string, lk labelLimits) {
	key := wc.streamRefs.key
	d.mu.RLock()
	for i := range wc.series {
		if s := &wc.series[i]; s.cacheable() {
			key = refKey(key[:0], tenantID, s.raw[:s.labelsEnd])
			if e := d.refs[string(key)]; e.checked && e.lim == lk {
				s.ref, s.token = e.ref, e.token
			}
		}
	}
	d.mu.RUnlock()
	wc.streamRefs.key = key
}

// rememberSeries records in d every cacheable series of wc (validated:
// the series to push) that knownSeries did not find, with its token and
// lk, keeping the ref it may have, and gives the push's refs to refsOf.
func (d *seriesDict) rememberSeries(wc *writeCtx, tenantID string, lk labelLimits) {
	p := &wc.streamRefs
	p.refs = slices.Grow(p.refs[:0], len(wc.series))[:len(wc.series)]
	missing := false
	for i := range wc.series {
		s := &wc.series[i]
		p.refs[i] = s.ref
		missing = missing || s.ref == 0 && s.cacheable()
	}
	if missing {
		d.mu.Lock()
		if d.refs == nil {
			d.refs = make(map[string]dictEntry)
		}
		for i := range wc.series {
			if s := &wc.series[i]; s.ref == 0 && s.cacheable() {
				p.key = refKey(p.key[:0], tenantID, s.raw[:s.labelsEnd])
				p.refs[i] = d.checked(string(p.key), s.token, lk)
			}
		}
		d.mu.Unlock()
	}
	p.once.Do(func() {}) // The refs are known: refsOf takes them as they are.
}

// checked records that the series of key passed valid under lk with
// token, and returns its ref: its own if it had one, a new one while d has
// room, else 0. The caller holds d.mu.
func (d *seriesDict) checked(key string, token uint32, lk labelLimits) uint32 {
	e, ok := d.refs[key]
	if !ok && len(d.refs) >= maxStreamRefs {
		return 0
	}
	if !ok {
		e.ref = uint32(len(d.refs) + 1)
	}
	e.token, e.lim, e.checked = token, lk, true
	d.refs[key] = e
	return e.ref
}

// lookup fills refs with the ref of each of wc's series, with one read
// lock for the series already known and one write lock if some are new.
func (d *seriesDict) lookup(wc *writeCtx, refs []uint32, key []byte) ([]uint32, []byte) {
	refs = slices.Grow(refs[:0], len(wc.series))[:len(wc.series)]
	missing := 0
	d.mu.RLock()
	for i := range wc.series {
		refs[i] = 0
		if s := &wc.series[i]; s.cacheable() {
			key = refKey(key[:0], wc.tenant, s.raw[:s.labelsEnd])
			if refs[i] = d.refs[string(key)].ref; refs[i] == 0 {
				missing++
			}
		}
	}
	full := len(d.refs) >= maxStreamRefs
	d.mu.RUnlock()
	if missing == 0 || full {
		return refs, key
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.refs == nil {
		d.refs = make(map[string]dictEntry)
	}
	for i := range wc.series {
		if s := &wc.series[i]; refs[i] == 0 && s.cacheable() && len(d.refs) < maxStreamRefs {
			key = refKey(key[:0], wc.tenant, s.raw[:s.labelsEnd])
			e, ok := d.refs[string(key)] // Another push may have added it.
			if !ok {
				e.ref = uint32(len(d.refs) + 1) // Not checked: validate checks it again.
				d.refs[string(key)] = e
			}
			refs[i] = e.ref
		}
	}
	return refs, key
}

// wireRefs sets s.wire to the series_refs of batch in on s (see
// argus.proto) from the push's refs, marking the refs it defines as
// defined (and listing them in s.definedLog, for undefine). The caller
// holds s.sendMu.
func (s *pushStream) wireRefs(in *rawBatch, refs []uint32) {
	s.wire = slices.Grow(s.wire[:0], len(in.b.series))[:len(in.b.series)]
	s.definedLog = s.definedLog[:0]
	for k, i := range in.b.series {
		ref := refs[i]
		switch {
		case ref == 0:
			s.wire[k] = 0
		case s.isDefined(ref):
			s.wire[k] = uint64(ref) << 1
		default:
			s.setDefined(ref, true)
			s.definedLog = append(s.definedLog, ref)
			s.wire[k] = uint64(ref)<<1 | 1
		}
	}
}

// undefine forgets the refs wireRefs defined, if their push was not sent.
func (s *pushStream) undefine() {
	for _, ref := range s.definedLog {
		s.setDefined(ref, false)
	}
}

func (s *pushStream) isDefined(ref uint32) bool {
	w := int(ref / 64)
	return w < len(s.defined) && s.defined[w]&(1<<(ref%64)) != 0
}

func (s *pushStream) setDefined(ref uint32, on bool) {
	w := int(ref / 64)
	if w >= len(s.defined) {
		s.defined = append(s.defined, make([]uint64, w+1-len(s.defined))...)
	}
	if on {
		s.defined[w] |= 1 << (ref % 64)
	} else {
		s.defined[w] &^= 1 << (ref % 64)
	}
}

// streamBatch is the WriteRequest of a batch on one stream with series
// refs: a series sent by ref (wire[k] even, not 0) without its label
// fields, every other series whole. Its series are never symbolised.
type streamBatch struct {
	r    *rawBatch
	wire []uint64
}

// body returns the bytes of the k-th series of the batch as sent, or nil
// if it is marshalled from its decoded form.
func (sb streamBatch) body(k int) []byte {
	s := &sb.r.wc.series[sb.r.b.series[k]]
	if w := sb.wire[k]; w != 0 && w&1 == 0 {
		return s.raw[s.labelsEnd:]
	}
	return s.raw
}

// SizeVT is the size of the encoded WriteRequest.
func (sb streamBatch) SizeVT() int {
	n := sb.r.metadataSize()
	for k, i := range sb.r.b.series {
		l := len(sb.body(k))
		if sb.body(k) == nil {
			l = sb.r.wc.series[i].ts.SizeVT()
		}
		n += 1 + sizeOfVarint(uint64(l)) + l
	}
	return n
}

// MarshalToSizedBufferVT writes the WriteRequest into buf, which is exactly
// SizeVT long: the series front to back, then the metadata.
func (sb streamBatch) MarshalToSizedBufferVT(buf []byte) (int, error) {
	p := 0
	for k, i := range sb.r.b.series {
		body := sb.body(k)
		l := len(body)
		ts := sb.r.wc.series[i].ts
		if body == nil {
			l = ts.SizeVT()
		}
		buf[p] = tagTimeSeries
		p += 1 + binary.PutUvarint(buf[p+1:], uint64(l))
		if body != nil {
			copy(buf[p:], body)
		} else if _, err := ts.MarshalToSizedBufferVT(buf[p : p+l]); err != nil {
			return 0, err
		}
		p += l
	}
	sb.r.marshalMetadata(buf, len(buf))
	return len(buf), nil
}

// encodeWithRefs returns the encoding of in on s with series refs, and
// sets s.wire. The caller holds s.sendMu; on an error nothing is defined.
func (s *pushStream) encodeWithRefs(in *rawBatch, refs []uint32) (mem.BufferSlice, error) {
	s.wireRefs(in, refs)
	data, err := grpccodec.Encode(streamBatch{r: in, wire: s.wire})
	if err != nil {
		s.undefine()
	}
	return data, err
}
