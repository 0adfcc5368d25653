package slab

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTake(t *testing.T) {
	var block []int
	a := Take(&block, 3, 16)
	require.Len(t, a, 3)
	require.Equal(t, 16, cap(block))
	a[0], a[1], a[2] = 1, 2, 3
	b := Take(&block, 13, 16) // fills the block exactly
	require.Len(t, b, 13)
	require.Equal(t, 3, cap(a), "a returned slice cannot grow into its neighbour")
	c := Take(&block, 1, 16) // a new block, twice as large
	require.Equal(t, 32, cap(block))
	c[0] = 9
	require.Equal(t, []int{1, 2, 3}, a, "earlier slices keep their elements")
	big := Take(&block, 5000, 16)
	require.Len(t, big, 5000)
}
