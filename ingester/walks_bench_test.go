package ingester

import "testing"

// BenchmarkBackgroundWalks: what the background loops spend per
// -ingester.flush-period on a head of benchInstances()*benchMetrics series
// (ARGUS_BENCH_INSTANCES) that takes no push, as during a burst of reads:
// the seal watermark (sealBefore, minMemoryTime) and the idle cut
// (cutIdleChunks). Each walk visits every series under its mu unless its
// answer cannot have changed (walks.go).
func BenchmarkBackgroundWalks(b *testing.B) {
	ing := readBenchIngester(b)
	h := ing.getTenant("bench")
	defer reportCPU(b)()
	for b.Loop() {
		if ing.sealBefore() == noTime {
			b.Fatal("no seal watermark")
		}
		h.flushMu.Lock()
		h.cutIdleChunks()
		h.flushMu.Unlock()
	}
}
