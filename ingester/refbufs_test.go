package ingester

import (
	"runtime"
	"testing"

	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"
)

// TestRefBufStack: a buffer put back is handed out again after GC cycles
// (a sync.Pool drops it within two), the largest first, and only the
// maxRefBufs largest are kept.
func TestRefBufStack(t *testing.T) {
	var st refBufStack
	bufOf := func(n int) *[]promstorage.SeriesRef {
		b := make([]promstorage.SeriesRef, n)
		return &b
	}
	small, mid, large := bufOf(10), bufOf(100), bufOf(1000)
	st.Put(mid)
	st.Put(large)
	st.Put(small) // Smaller than the two kept: dropped.
	runtime.GC()
	runtime.GC()
	runtime.GC()
	got := st.Get()
	require.Same(t, large, got)
	require.Empty(t, *got, "handed out empty")
	require.Same(t, mid, st.Get())
	fresh := st.Get()
	require.Zero(t, cap(*fresh), "none left: a new one")

	st.Put(small)
	st.Put(mid)
	st.Put(large) // Drops small.
	require.Same(t, large, st.Get())
	require.Same(t, mid, st.Get())
	require.Zero(t, cap(*st.Get()))
}
