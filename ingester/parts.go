package ingester

import (
	"runtime"
	"sync"
)

// partMinItems is the fewest items of a part that inParts runs beside
// others: below it, starting a goroutine costs more than it saves. A
// variable only so that tests can split small reads.
var partMinItems = 1 << 15

// inParts runs f over the items of s split into contiguous parts, at once,
// one per processor (GOMAXPROCS) for a read of many series, else as one
// part. Each f(lo, hi) writes its results into s in place from lo on and
// returns how many; the parts' results are then moved down behind the
// previous part's, so that they end contiguous from s[0], in order. It
// returns their count, or the first error of a part.
//
// A read of a million series spends most of its time in cache misses, one
// series after the other (docs/benchmarks.md, "Reads at 1M series"): the
// series of the other half are read on another processor meanwhile.
func inParts[T any](s []T, f func(lo, hi int) (int, error)) (int, error) {
	n := len(s)
	parts := min(runtime.GOMAXPROCS(0), n/partMinItems)
	if parts <= 1 {
		return f(0, n)
	}
	counts := make([]int, parts)
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for p := range parts {
		wg.Go(func() { counts[p], errs[p] = f(p*n/parts, (p+1)*n/parts) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	total := 0
	for p := range parts {
		lo := p * n / parts
		total += copy(s[total:], s[lo:lo+counts[p]])
	}
	return total, nil
}
