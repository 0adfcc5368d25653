package ruler

import (
	"fmt"
	"sync"

	"google.golang.org/grpc"
)

// connPool holds one gRPC connection per ruler address, made on first use
// (grpc.NewClient connects lazily and reconnects by itself). Connections
// live until close: rulers are few, and a replaced ruler's idle
// connection costs a file descriptor and no traffic. Safe for concurrent
// use.
type connPool struct {
	opts []grpc.DialOption

	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn // guarded by mu
	closed bool                        // guarded by mu
}

func newConnPool(opts []grpc.DialOption) *connPool {
	return &connPool{opts: opts, conns: map[string]*grpc.ClientConn{}}
}

// get returns the connection to addr.
func (p *connPool) get(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("connect %s: the ruler lister is closed", addr)
	}
	if c, ok := p.conns[addr]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(addr, p.opts...)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", addr, err)
	}
	p.conns[addr] = c
	return c, nil
}

// close closes every connection. It is idempotent.
func (p *connPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for addr, c := range p.conns {
		_ = c.Close() // Nothing to do about a failed close.
		delete(p.conns, addr)
	}
}
