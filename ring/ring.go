package ring

import (
	"errors"
	"fmt"
)

// ErrEmptyRing means the ring has no instance to place a series on.
var ErrEmptyRing = errors.New("ring has no instances")

// Instance is one member of the ring: an ingester, addressed by gRPC.
type Instance struct {
	ID   string
	Addr string // host:port of its gRPC server
}

// Static is a ring whose members never change: one ingester in the
// all-in-one process. It is safe for concurrent use.
type Static struct {
	instances []Instance
}

// NewStatic returns a ring of the given instances.
func NewStatic(instances ...Instance) (*Static, error) {
	if len(instances) == 0 {
		return nil, ErrEmptyRing
	}
	return &Static{instances: append([]Instance(nil), instances...)}, nil
}

// Get returns the instance that owns token. The result is appended to buf,
// which the caller owns.
func (s *Static) Get(token uint32, buf []Instance) ([]Instance, error) {
	if len(s.instances) == 0 {
		return buf, fmt.Errorf("get token %d: %w", token, ErrEmptyRing)
	}
	return append(buf, s.instances[int(token)%len(s.instances)]), nil
}

// Instances returns every member of the ring. The slice is a copy.
func (s *Static) Instances() []Instance {
	return append([]Instance(nil), s.instances...)
}
