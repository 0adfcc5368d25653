package ring

import "fmt"

// Static is a ring whose members never change: one ingester in the
// all-in-one process, or a fixed list. It is safe for concurrent use.
type Static struct {
	instances []Instance
	rf        int
}

// StaticOption configures a Static ring.
type StaticOption func(*Static)

// NewStatic returns a ring of the given instances with replication factor 1.
func NewStatic(instances ...Instance) (*Static, error) {
	return NewStaticWithOptions(nil, instances...)
}

// WithStaticReplicationFactor sets the replication factor of a Static ring
// (clamped to [1, number of instances]).
func WithStaticReplicationFactor(rf int) StaticOption {
	return func(s *Static) { s.rf = rf }
}

// NewStaticWithOptions returns a ring of the given instances, configured by opts.
func NewStaticWithOptions(opts []StaticOption, instances ...Instance) (*Static, error) {
	if len(instances) == 0 {
		return nil, ErrEmptyRing
	}
	s := &Static{instances: append([]Instance(nil), instances...), rf: 1}
	for _, o := range opts {
		o(s)
	}
	s.rf = max(1, min(s.rf, len(s.instances)))
	return s, nil
}

// Get returns the ReplicationFactor instances that own token: the instance at
// token modulo the number of instances and the ones after it. The result is
// appended to buf, which the caller owns.
func (s *Static) Get(token uint32, buf []Instance) ([]Instance, error) {
	if len(s.instances) == 0 {
		return buf, fmt.Errorf("get token %d: %w", token, ErrEmptyRing)
	}
	first := int(token) % len(s.instances)
	for i := range s.rf {
		buf = append(buf, s.instances[(first+i)%len(s.instances)])
	}
	return buf, nil
}

// ReplicationFactor returns how many instances hold each series.
func (s *Static) ReplicationFactor() int { return s.rf }

// ReadSet returns every instance and how many a read may lose:
// ReplicationFactor/2. A Static ring has no health.
func (s *Static) ReadSet() (instances []Instance, maxFailures int, err error) {
	return s.Instances(), s.rf / 2, nil
}

// Instances returns every member of the ring. The slice is a copy.
func (s *Static) Instances() []Instance {
	return append([]Instance(nil), s.instances...)
}

// HealthyInstancesCount returns the number of instances: a static ring has
// no health.
func (s *Static) HealthyInstancesCount() int { return len(s.instances) }

// HealthyMembers returns 1 for every role: with a static ring this process
// is the only distributor it knows.
func (s *Static) HealthyMembers(string) int { return 1 }
