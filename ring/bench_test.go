package ring

// Run: go test ./ring -run '^$' -bench . -count 10 > new.txt; benchstat old.txt new.txt

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func BenchmarkRingGet(b *testing.B) {
	for _, zones := range []bool{false, true} {
		for _, n := range []int{3, 30} {
			b.Run(fmt.Sprintf("instances=%d/zones=%t", n, zones), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(1, 2))
				d := NewDesc()
				joinBalanced(rng, d, n, 128, "a", "b", "c")
				opts := testOpts(3)
				opts.ZoneAwareness = zones
				r := NewRing(d, opts)
				buf := make([]Instance, 0, 3)
				b.ReportAllocs()
				i := uint32(0)
				for b.Loop() {
					i += 0x9e3779b9
					var err error
					buf, err = r.Get(i, buf[:0])
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkKVRing(b *testing.B) {
	kv, err := NewKV(testMemberlistConfig(), testOpts(3), Deps{})
	if err != nil {
		b.Fatal(err)
	}
	for i, id := range []string{"a", "b", "c"} {
		kv.Update(id, InstanceDesc{State: StateActive, Tokens: []uint32{uint32(i) << 30}, HeartbeatUnixMillis: testNow.UnixMilli()})
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var buf []Instance
		for pb.Next() {
			var err error
			if buf, err = kv.Get(5, buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
