// Package slab hands out small slices carved from shared blocks, so that a
// response of many series costs a few allocations instead of one per series,
// label and chunk (the ingester's Series answers, the querier's decoding).
package slab

// maxBlock caps a block, in elements, so that one long-lived slice never pins
// much more memory than it uses.
const maxBlock = 4096

// Take returns n zero elements from the free end of *block, first replacing
// *block with a new block when it has no room. Blocks start at minBlock
// elements, so that small answers stay cheap, and double up to 4096.
// Elements once returned are never returned again, so a returned slice stays
// valid while it is referenced. Not safe for concurrent use of one block.
func Take[T any](block *[]T, n, minBlock int) []T {
	if cap(*block)-len(*block) < n {
		size := min(max(2*cap(*block), minBlock), maxBlock)
		*block = make([]T, 0, max(size, n))
	}
	start := len(*block)
	*block = (*block)[:start+n]
	return (*block)[start : start+n : start+n]
}
