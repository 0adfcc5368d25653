package distributor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/argus-tsdb/argus/internal/service"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// ClientPool is the ClientFactory of a process: it keeps one gRPC
// connection per ingester address, made on first use with grpc.NewClient
// (which does not dial until the first call, and reconnects by itself). It is
// safe for concurrent use.
//
// A connection lives until the ingester leaves the ring: Prune (run every
// period by the service PruneService returns) closes the connections to the
// addresses the ring no longer lists, so that rolled ingesters do not leave
// connections and their goroutines behind. An ingester that is only
// unhealthy keeps its connection, which reconnects by itself.
type ClientPool struct {
	dialOpts []grpc.DialOption
	// maxMsgSize bounds the pushes sent on a PushStream (see
	// SetMaxMsgSize); 0 until set.
	maxMsgSize int
	// dict gives series refs to the pushes of every client (streamrefs.go).
	dict seriesDict

	mu      sync.RWMutex
	clients map[string]poolEntry // guarded by mu
	closed  bool                 // guarded by mu
}

type poolEntry struct {
	conn   *grpc.ClientConn
	client *ingesterClient
}

// NewClientPool returns an empty pool whose connections are made with
// dialOpts (transport credentials at least: grpc.NewClient needs them).
func NewClientPool(dialOpts ...grpc.DialOption) *ClientPool {
	return &ClientPool{dialOpts: dialOpts, clients: make(map[string]poolEntry)}
}

// SetMaxMsgSize tells p the largest gRPC message, in bytes, its connections
// send and the ingesters receive (-server.grpc-max-msg-size, which must be
// the same on both): a push whose message on the ingester's PushStream would
// be larger is sent as a unary Push instead, which fails as before if the
// push is over the size itself, rather than breaking the stream of the
// pushes in flight. Unset, the bound is gRPC's default receive limit of 4
// MiB. Call it before the first Get.
func (p *ClientPool) SetMaxMsgSize(n int) { p.maxMsgSize = n }

// seriesDictionary returns the dictionary of p's series refs, which the
// distributor's validation reads too (streamrefs.go).
func (p *ClientPool) seriesDictionary() *seriesDict { return &p.dict }

// Get returns the ingester client of addr (host:port), creating its
// connection on first use. It does not block on the network.
func (p *ClientPool) Get(addr string) (Pusher, error) {
	e, err := p.entry(addr)
	if err != nil {
		return nil, err
	}
	return e.client, nil
}

// Conn returns the connection to addr, the one Get's client uses, so that
// other clients of the same ingester (the querier's SeriesSource) share it.
func (p *ClientPool) Conn(addr string) (*grpc.ClientConn, error) {
	e, err := p.entry(addr)
	if err != nil {
		return nil, err
	}
	return e.conn, nil
}

func (p *ClientPool) entry(addr string) (poolEntry, error) {
	p.mu.RLock()
	e, ok := p.clients[addr]
	closed := p.closed
	p.mu.RUnlock()
	if ok {
		return e, nil
	}
	if closed {
		return poolEntry{}, ErrPoolClosed
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return poolEntry{}, ErrPoolClosed
	}
	if e, ok := p.clients[addr]; ok {
		return e, nil
	}
	conn, err := grpc.NewClient(addr, p.dialOpts...)
	if err != nil {
		return poolEntry{}, fmt.Errorf("create grpc client for ingester %s: %w", addr, err)
	}
	e = poolEntry{conn: conn, client: &ingesterClient{IngesterClient: arguspb.NewIngesterClient(conn), conn: conn, maxMsgSize: p.maxMsgSize, dict: &p.dict}}
	p.clients[addr] = e
	return e, nil
}

// Prune closes the connections to every address not in live and returns
// how many it closed. Calls in flight on them fail with codes.Canceled; a
// later Get of such an address connects again.
func (p *ClientPool) Prune(live map[string]bool) int {
	p.mu.Lock()
	var gone []*grpc.ClientConn
	for addr, e := range p.clients {
		if !live[addr] {
			gone = append(gone, e.conn)
			delete(p.clients, addr)
		}
	}
	p.mu.Unlock()
	for _, c := range gone {
		_ = c.Close() // Only fails if already closed.
	}
	return len(gone)
}

// Len is the number of connections the pool holds.
func (p *ClientPool) Len() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.clients)
}

// PruneService returns a service that prunes p every period to the
// addresses r lists (healthy or not). Closing p stays its owner's job.
func (p *ClientPool) PruneService(r instancesLister, period time.Duration) service.Service {
	return &poolPruner{pool: p, ring: r, period: period}
}

type poolPruner struct {
	pool   *ClientPool
	ring   instancesLister
	period time.Duration
}

func (s *poolPruner) Starting(context.Context) error { return nil }

func (s *poolPruner) Running(ctx context.Context) error {
	t := time.NewTicker(s.period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			live := map[string]bool{}
			for _, inst := range s.ring.Instances() {
				live[inst.Addr] = true
			}
			s.pool.Prune(live)
		}
	}
}

func (s *poolPruner) Stopping(context.Context) error { return nil }

// Close closes every connection; Get fails with ErrPoolClosed afterwards.
// Calls in flight on a closed connection fail with codes.Canceled. Close is
// idempotent.
func (p *ClientPool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	var errs []error
	for addr, e := range p.clients {
		if err := e.conn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close connection to ingester %s: %w", addr, err))
		}
	}
	clear(p.clients)
	return errors.Join(errs...)
}
