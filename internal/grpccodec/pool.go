package grpccodec

import (
	"fmt"
	"math/bits"
	"sync"
)

// Buffers for Marshal, which writes every byte of the buffer it takes (and
// fails if it did not), so that, unlike gRPC's default pool, they need not be
// zeroed. The default pool zeroes a whole size class on every Get: for a
// distributor's push of 1000 series (about 250 KB per ingester) that is a
// 1 MiB clear per replica, more than the copy of the series bytes itself.
const (
	minPooledShift = 12 // 4 KiB: below gRPC's pooling threshold buffers are not pooled at all
	maxPooledShift = 24 // 16 MiB: a larger message gets a buffer of its own
)

// dirtyPool is a mem.BufferPool of buffers in power-of-two size classes that
// hands them out as they were put back. Safe for concurrent use.
type dirtyPool struct {
	classes [maxPooledShift - minPooledShift + 1]sync.Pool
}

var marshalPool = &dirtyPool{}

// Get returns a buffer of length size, not zeroed.
func (p *dirtyPool) Get(size int) *[]byte {
	shift := max(bits.Len(uint(size-1)), minPooledShift)
	if shift > maxPooledShift {
		b := make([]byte, size)
		return &b
	}
	if b, ok := p.classes[shift-minPooledShift].Get().(*[]byte); ok {
		*b = (*b)[:size]
		return b
	}
	b := make([]byte, size, 1<<shift)
	return &b
}

// Put keeps b for a later Get if its capacity is one of the size classes.
func (p *dirtyPool) Put(b *[]byte) {
	c := cap(*b)
	shift := bits.Len(uint(c)) - 1
	if c != 1<<shift || shift < minPooledShift || shift > maxPooledShift {
		return
	}
	p.classes[shift-minPooledShift].Put(b)
}

// marshalError is the error of a MarshalToSizedBufferVT that failed, or that
// wrote n bytes of a buffer of size: the rest would be another message's.
func marshalError(err error, n, size int) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("grpccodec: marshalled %d bytes, SizeVT said %d", n, size)
}
