package grpccodec

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDirtyPool_SizeClasses(t *testing.T) {
	p := &dirtyPool{}
	for _, c := range []struct{ size, cap int }{
		{1, 1 << minPooledShift},
		{4096, 4096},
		{4097, 8192},
		{250_000, 1 << 18},
		{1 << maxPooledShift, 1 << maxPooledShift},
		{1<<maxPooledShift + 1, 1<<maxPooledShift + 1}, // not pooled: exactly its size
	} {
		b := p.Get(c.size)
		require.Len(t, *b, c.size)
		require.Equal(t, c.cap, cap(*b), "size %d", c.size)
	}
}

// TestDirtyPool_Reuses checks that a buffer put back is handed out again,
// not zeroed, and that a buffer of no size class is not kept.
func TestDirtyPool_Reuses(t *testing.T) {
	p := &dirtyPool{}
	b := p.Get(5000)
	(*b)[0] = 42
	p.Put(b)
	// sync.Pool may drop what it holds (at a GC); retry to see the reuse.
	reused := false
	for range 100 {
		got := p.Get(6000)
		if cap(*got) == cap(*b) && (*got)[0] == 42 {
			reused = true
			break
		}
		p.Put(b)
	}
	require.True(t, reused, "a buffer of the same class is reused as it was")

	odd := make([]byte, 10, 5000)
	p.Put(&odd)
	for range 10 {
		got := p.Get(4000) // the class a floor rounding would have put it in
		require.NotEqual(t, 5000, cap(*got), "a buffer of no size class is not kept")
	}
}

// shortMessage claims a size its marshalling does not fill.
type shortMessage struct{}

func (shortMessage) SizeVT() int                                    { return 8000 }
func (shortMessage) MarshalToSizedBufferVT(buf []byte) (int, error) { return len(buf) - 1, nil }
func (shortMessage) UnmarshalVT([]byte) error                       { return nil }

// TestCodec_RefusesAShortMarshal checks that a message that writes fewer
// bytes than it said fails instead of sending a dirty buffer's old bytes.
func TestCodec_RefusesAShortMarshal(t *testing.T) {
	_, err := Codec{}.Marshal(shortMessage{})
	require.ErrorContains(t, err, "marshalled 7999 bytes, SizeVT said 8000")
}
