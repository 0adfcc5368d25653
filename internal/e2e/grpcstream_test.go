package e2e

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/client"
	"github.com/argus-tsdb/argus/internal/clustertest"
	"github.com/argus-tsdb/argus/proto/argusquerypb"
)

// TestGRPCQueryStreaming100K runs a range query over 100K series x 60
// points (6M points, about 100 MB as Go values, several hundred MB as
// JSON) against the real binary through the gRPC query API. The answer
// arrives in bounded frames, the first long before the last; a client that
// handles each series as it arrives (client.QueryRangeEach) gets all of
// them while its live heap stays within 48 MiB of where it started, far
// below what the whole result takes. Memory is measured, not time.
func TestGRPCQueryStreaming100K(t *testing.T) {
	skipIfShort(t)
	const (
		tenant  = "stream"
		series  = 100_000
		samples = 60
		step    = 10 * time.Second
		batch   = 5000
	)
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-log.level=warn", "-distributor.ingestion-rate-limit=0",
		"-ingester.max-global-series-per-user=0", "-ingester.max-global-series-per-metric=0"}})
	end := time.Now().Add(-time.Second).Truncate(time.Second)
	start := end.Add(-(samples - 1) * step)
	for first := 0; first < series; first += batch {
		ts := make([]clustertest.TimeSeries, 0, batch)
		for i := first; i < first+batch; i++ {
			s := clustertest.TimeSeries{Labels: clustertest.Labels("__name__", "stream_test", "job", "e2e", "series", fmt.Sprintf("s%06d", i))}
			for j := range samples {
				s.Samples = append(s.Samples, clustertest.Sample{T: start.Add(time.Duration(j) * step).UnixMilli(), V: float64(i) + float64(j)/3})
			}
			ts = append(ts, s)
		}
		pushOK(t, a, tenant, ts)
	}
	c, err := client.Dial(a.GRPCAddr(), client.Options{Tenant: tenant})
	require.NoError(t, err)
	defer c.Close()
	q := client.RangeQuery{Expr: "stream_test", Start: start, End: end, Step: step}

	// The frames: bounded, many, and the first holds a small part.
	stream, err := c.API().QueryRange(c.Context(t.Context()), &argusquerypb.QueryRangeRequest{
		Query: q.Expr, StartMs: start.UnixMilli(), EndMs: end.UnixMilli(), StepMs: step.Milliseconds(),
	})
	require.NoError(t, err)
	frames, total, firstSeries, maxFrame := 0, 0, 0, 0
	for {
		f, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if frames == 0 {
			firstSeries = len(f.GetSeries())
		}
		frames++
		for _, s := range f.GetSeries() {
			if !s.GetContinued() {
				total++ // a continued piece is the previous series
			}
		}
		maxFrame = max(maxFrame, f.SizeVT())
	}
	t.Logf("%d frames, the largest %d KiB, the first with %d series", frames, maxFrame>>10, firstSeries)
	require.Equal(t, series, total)
	require.Greater(t, frames, 50)
	require.Less(t, firstSeries, series/20)
	require.Less(t, maxFrame, 2<<20)

	// The client's memory, series by series.
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	runtime.GC()
	base := heap()
	peak, got, points := base, 0, 0
	_, err = c.QueryRangeEach(t.Context(), q, func(s client.Series) error {
		got++
		points += len(s.Floats)
		if got%2000 == 0 {
			peak = max(peak, heap())
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, series, got)
	require.Equal(t, series*samples, points)
	whole := uint64(points) * 16
	t.Logf("client heap in use: %d MiB before, peak %d MiB; the whole result's points alone are %d MiB", base>>20, peak>>20, whole>>20)
	require.Less(t, peak-base, uint64(48<<20))
}
