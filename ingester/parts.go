package ingester

import (
	"runtime"
	"sync"
)

// partMinItems is the fewest items of a part that inParts runs beside
// others: below it, starting a goroutine costs more than it saves. A
// variable only so that tests can split small reads.
var partMinItems = 1 << 15

// inParts runs f over [0, n) split into contiguous parts, at once, one per
// processor (GOMAXPROCS) for a read of many series, else as one part. Each
// f(lo, hi) writes its results in place from lo on and returns how many;
// move(from, to, n) then moves each part's results down behind the
// previous part's, so that they end contiguous from 0, in order. It
// returns their count, or the first error of a part.
//
// A read of a million series spends most of its time in cache misses, one
// series after the other (docs/benchmarks.md, "Reads at 1M series"): the
// series of the other half are read on another processor meanwhile.
func inParts(n int, f func(lo, hi int) (int, error), move func(from, to, n int)) (int, error) {
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
		if lo := p * n / parts; lo != total && counts[p] > 0 {
			move(lo, total, counts[p])
		}
		total += counts[p]
	}
	return total, nil
}
