package grpccodec

import (
	"sync"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// Leased requests. A replica's Push decode used to allocate, per request, a
// copy of the encoded request and the arrays of writerequest.go: for a push
// of 1000 series about 400 KB, zeroed by the allocator and collected soon
// after, a quarter of the replica's CPU with the GC it caused. A request
// decoded by Codec.Unmarshal or UnmarshalWriteRequestOwned now lives in
// pooled memory, leased to its receiver until it calls ReleaseWriteRequest:
// the copy of the encoded bytes comes from the dirty pool of pool.go, the
// arrays from arraysPool.
//
// The contract: after ReleaseWriteRequest(m), nothing may read m or anything
// reached from it (its series, labels, samples, and every label string,
// which aliases the encoded bytes), as the next request decoded overwrites
// them. The ingester's Push, the only receiver of a WriteRequest, releases
// its request when it returns, and keeps nothing of it (ingester/doc.go
// lists why). A decoded request that is never released is not reused: it
// is garbage once unreachable, but its lease entry stays, so a receiver of
// WriteRequests must release every one. A gRPC server interceptor must not read the
// request after the handler returns either (cmd/argus installs none).

// lease is the pooled memory of one decoded request.
type lease struct {
	buf    *[]byte        // the copy of the encoded request, or nil if the caller owns the bytes
	arrays *requestArrays // nil if the request is not in pooled arrays
}

var (
	arraysPool = sync.Pool{New: func() any { return &requestArrays{} }}

	// leases maps each request decoded and not yet released to its memory.
	// A map rather than a field of the request: the message is generated,
	// and gRPC allocates it. Steady-state inserts and deletes reuse the
	// map's slots, so it does not allocate either.
	leasesMu sync.Mutex
	leases   = map[*arguspb.WriteRequest]lease{}
)

// decodeLeased decodes data into m, which must be empty, as
// unmarshalWriteRequest does but into pooled arrays, and leases them (and
// buf, the pooled memory of data, if not nil) to m until
// ReleaseWriteRequest(m). On an error nothing is leased: buf and the arrays
// return to their pools.
func decodeLeased(data []byte, buf *[]byte, m *arguspb.WriteRequest) error {
	a := arraysPool.Get().(*requestArrays)
	pooled, err := decodeInto(data, m, a)
	if err != nil || !pooled {
		arraysPool.Put(a)
		a = nil
	}
	if err != nil {
		if buf != nil {
			marshalPool.Put(buf)
		}
		return err
	}
	if buf == nil && a == nil {
		return nil
	}
	leasesMu.Lock()
	leases[m] = lease{buf: buf, arrays: a}
	leasesMu.Unlock()
	return nil
}

// ReleaseWriteRequest ends the lease of m (see above): its memory is
// reused by the next request decoded, and m must not be read again. It does
// nothing for a request that holds no lease (one built or decoded
// otherwise), and is safe for concurrent use.
func ReleaseWriteRequest(m *arguspb.WriteRequest) {
	leasesMu.Lock()
	l, ok := leases[m]
	if ok {
		delete(leases, m)
	}
	leasesMu.Unlock()
	if !ok {
		return
	}
	m.Timeseries, m.Metadata = nil, nil // A mistaken read after release finds nothing rather than another request.
	if l.arrays != nil {
		arraysPool.Put(l.arrays)
	}
	if l.buf != nil {
		marshalPool.Put(l.buf)
	}
}

// leasedCount is the number of requests decoded and not released, for
// tests.
func leasedCount() int {
	leasesMu.Lock()
	defer leasesMu.Unlock()
	return len(leases)
}
