package distributor

import (
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// ClientPool is the ClientFactory of a process: it keeps one gRPC
// connection per ingester address, made on first use with grpc.NewClient
// (which does not dial until the first call, and reconnects by itself). It is
// safe for concurrent use.
//
// Connections are never evicted: the ring is static today. When ingesters
// come and go (the gossiped ring), the pool must close the connections of
// the ones that left.
type ClientPool struct {
	dialOpts []grpc.DialOption

	mu      sync.RWMutex
	clients map[string]poolEntry // guarded by mu
	closed  bool                 // guarded by mu
}

type poolEntry struct {
	conn   *grpc.ClientConn
	client arguspb.IngesterClient
}

// NewClientPool returns an empty pool whose connections are made with
// dialOpts (transport credentials at least: grpc.NewClient needs them).
func NewClientPool(dialOpts ...grpc.DialOption) *ClientPool {
	return &ClientPool{dialOpts: dialOpts, clients: make(map[string]poolEntry)}
}

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
	e = poolEntry{conn: conn, client: arguspb.NewIngesterClient(conn)}
	p.clients[addr] = e
	return e, nil
}

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
