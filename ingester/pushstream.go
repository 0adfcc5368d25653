package ingester

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// SeriesRefsHeader is the response header with which PushStream tells the
// client it takes PushStreamRequest.series_refs (see argus.proto): a client
// sends refs only to an ingester that sent it.
const SeriesRefsHeader = "argus-series-refs"

// MaxStreamRefs is the largest series ref a PushStream takes (argus.proto).
const MaxStreamRefs = 1 << 20

// PushStream serves Ingester/PushStream: every request it receives is one
// Push (with the request's tenant), run in a goroutine of its own as a
// unary Push would be, so that a stream's pushes share the tenant's WAL
// fsyncs as concurrent calls do; each answer is sent as soon as its Push
// returns, under sendMu (gRPC allows one sender at a time).
//
// Before its Push starts, a request's series refs are resolved, in the
// order the requests arrive, against the stream's series cache (see
// streamSeries): a request that breaks the rules of series_refs ends the
// stream with InvalidArgument. Each ref also remembers the head series it
// resolved to, which spares later pushes the lookup (refseries.go).
//
// It returns once the client closes its side (io.EOF) or the stream fails,
// after the answers of every push in flight: a push whose answer cannot be
// sent any more is, to the client, a failed push (it retries it). It also
// returns, with Unavailable, once the ingester is stopping (no push runs
// any more): a distributor keeps its stream open for as long as it lives,
// and gRPC's graceful stop would wait for it (about 24 s in
// TestGracefulStop before this).
func (i *Ingester) PushStream(stream arguspb.Ingester_PushStreamServer) error {
	if err := stream.SendHeader(metadata.Pairs(SeriesRefsHeader, "1")); err != nil {
		return err
	}
	// The receiving loop runs in a goroutine of its own, as only returning
	// from the handler ends a stream blocked in RecvMsg; once the handler
	// returns, RecvMsg fails and the loop ends too.
	out := &streamSender{stream: stream}
	done := make(chan error, 1)
	go func() { done <- i.receivePushes(stream, out) }()
	select {
	case err := <-done:
		return err
	case <-i.stopping:
		// Answers not sent by now are dropped: to the client those pushes
		// failed, and it retries them elsewhere (a push is idempotent).
		out.close()
		return grpcError(ErrNotReady)
	}
}

// streamSender sends a stream's answers, one at a time as gRPC requires,
// until close.
type streamSender struct {
	mu     sync.Mutex
	err    error                             // guarded by mu: the first failed Send, or errStreamClosed
	stream arguspb.Ingester_PushStreamServer // sent on under mu only
}

var errStreamClosed = errors.New("push stream closed: the ingester is stopping")

func (s *streamSender) send(resp *arguspb.PushStreamResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = s.stream.Send(resp)
	}
}

// close makes every later send a no-op: the handler is about to return,
// after which the stream must not be sent on.
func (s *streamSender) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = errStreamClosed
	}
}

// receivePushes is PushStream's receiving loop: it runs each request's
// push in a goroutine and returns when the stream ends, after the answers
// of every push it started.
func (i *Ingester) receivePushes(stream arguspb.Ingester_PushStreamServer, out *streamSender) error {
	ctx := stream.Context()
	var (
		wg    sync.WaitGroup
		cache streamSeries
	)
	defer wg.Wait()
	for {
		req := new(arguspb.PushStreamRequest)
		if err := stream.RecvMsg(req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		hints, err := cache.resolve(req)
		if err != nil {
			grpccodec.ReleaseWriteRequest(req.Request) // Not pushed: Push would release it.
			return status.Error(codes.InvalidArgument, err.Error())
		}
		wg.Go(func() {
			// Push releases req.Request; the id and tenant are req's own.
			resp := &arguspb.PushStreamResponse{Id: req.Id}
			var err error
			resp.Response, err = i.push(tenant.With(ctx, req.Tenant), req.Request, hints.get())
			hints.release()
			if err != nil {
				st := status.Convert(err) // grpcError made it a status.
				resp.Response, resp.ErrorCode, resp.ErrorMessage = nil, uint32(st.Code()), st.Message()
			}
			out.send(resp)
		})
	}
}

// streamSeries is the series cache of one PushStream: the labels (and
// tenant) each ref was defined with. It is used by the stream's receiving
// goroutine only; its labels are never written once cached, so the pushes
// running concurrently may read them.
type streamSeries struct {
	// byRef is indexed by ref (0 unused). The distributor numbers its series
	// densely from 1 for all its streams, so a slice holds them in one
	// pointer each (nil for the refs it sends to other ingesters: at most
	// MaxStreamRefs pointers, 8 MiB), and a lookup (one per series pushed)
	// costs an index where a map's cost 8 % of a replica's CPU
	// (docs/benchmarks.md, "Cluster ingest").
	byRef []*cachedSeries
}

// get returns the series of ref, or nil.
func (c *streamSeries) get(ref uint64) *cachedSeries {
	if ref < uint64(len(c.byRef)) {
		return c.byRef[ref]
	}
	return nil
}

// set caches e as the series of ref, which is at most MaxStreamRefs.
func (c *streamSeries) set(ref uint64, e *cachedSeries) {
	if ref >= uint64(len(c.byRef)) {
		c.byRef = slices.Grow(c.byRef, int(ref)+1-len(c.byRef))[:ref+1]
	}
	c.byRef[ref] = e
}

type cachedSeries struct {
	tenant string
	labels []*arguspb.Label // owned by the cache: not leased memory
	hint   refHint          // the head series the ref resolved to last (refseries.go)
}

// resolve applies req's series refs: it caches the labels of each series
// that defines a ref (copied: the request's memory is leased) and gives
// each series sent by ref the labels of its ref, which must have been
// defined for the same tenant. It returns the hints of the request's
// series that have a ref (nil if none has), for Push, to release once the
// push has run. It fails on any broken rule; the stream then ends, and its
// cache with it.
func (c *streamSeries) resolve(req *arguspb.PushStreamRequest) (*pushHints, error) {
	refs := req.SeriesRefs
	if len(refs) == 0 {
		return nil, nil
	}
	series := req.GetRequest().GetTimeseries()
	if len(refs) != len(series) {
		return nil, fmt.Errorf("push stream: %d series refs for %d series", len(refs), len(series))
	}
	ph := leaseHints(len(series))
	if err := c.applyRefs(req.Tenant, refs, series, ph.h); err != nil {
		ph.release()
		return nil, err
	}
	return ph, nil
}

// applyRefs applies refs to series of tenant (see resolve), setting the
// hint of each series that has a ref.
func (c *streamSeries) applyRefs(tenantID string, refs []uint64, series []*arguspb.TimeSeries, hints []*refHint) error {
	for k, v := range refs {
		ref, define := v>>1, v&1 == 1
		switch {
		case v == 0:
			continue
		case ref > MaxStreamRefs:
			return fmt.Errorf("push stream: series ref %d over %d", ref, MaxStreamRefs)
		case define:
			if c.get(ref) != nil {
				return fmt.Errorf("push stream: series ref %d defined twice", ref)
			}
			if len(series[k].Labels) == 0 {
				return fmt.Errorf("push stream: series ref %d defined without labels", ref)
			}
			e := &cachedSeries{tenant: tenantID, labels: copyProtoLabels(series[k].Labels)}
			c.set(ref, e)
			hints[k] = &e.hint
		default:
			e := c.get(ref)
			if e == nil || e.tenant != tenantID || len(series[k].Labels) != 0 {
				return fmt.Errorf("push stream: series ref %d not defined for this tenant, or sent with labels", ref)
			}
			series[k].Labels = e.labels
			hints[k] = &e.hint
		}
	}
	return nil
}

// pushHints are the hints of one stream request's series, pooled: a slice
// per request was garbage that cost about 2.5 % of a replica's CPU
// (docs/benchmarks.md, "Cluster ingest"). The zero of *pushHints (nil)
// holds no hints.
type pushHints struct{ h []*refHint }

var hintsPool = sync.Pool{New: func() any { return new(pushHints) }}

// leaseHints returns pushHints of n nil hints.
func leaseHints(n int) *pushHints {
	p := hintsPool.Get().(*pushHints)
	p.h = slices.Grow(p.h[:0], n)[:n] // All nil: release cleared them.
	return p
}

// get returns the hints, nil for none (what push takes).
func (p *pushHints) get() []*refHint {
	if p == nil {
		return nil
	}
	return p.h
}

// release clears the hints, which point into the stream's cache, and
// returns p to the pool. push keeps no hint past its return.
func (p *pushHints) release() {
	if p == nil {
		return
	}
	clear(p.h)
	p.h = p.h[:0]
	hintsPool.Put(p)
}

// copyProtoLabels copies ls into memory of its own: one string of every
// name and value, and one array of labels.
func copyProtoLabels(ls []*arguspb.Label) []*arguspb.Label {
	n := 0
	for _, l := range ls {
		n += len(l.Name) + len(l.Value)
	}
	buf := make([]byte, 0, n)
	for _, l := range ls {
		buf = append(append(buf, l.Name...), l.Value...)
	}
	all := string(buf)
	arr := make([]arguspb.Label, len(ls))
	out := make([]*arguspb.Label, len(ls))
	p := 0
	for i, l := range ls {
		arr[i].Name = all[p : p+len(l.Name)]
		p += len(l.Name)
		arr[i].Value = all[p : p+len(l.Value)]
		p += len(l.Value)
		out[i] = &arr[i]
	}
	return out
}
