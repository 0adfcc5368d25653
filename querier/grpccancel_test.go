package querier

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/client"
	"github.com/argus-tsdb/argus/proto/argusquerypb"
)

// heapInUse is the live heap after a full collection, in bytes.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestQueryServer_Cancel cancels a gRPC query while the series source is
// still streaming: the source's call must end (the cancellation reaches the
// ingester's side), the client gets Canceled, and what the query held is
// released: the package's goleak check (TestMain) finds no goroutine left,
// and the heap returns to within a bound of what it was.
func TestQueryServer_Cancel(t *testing.T) {
	gen := newGeneratedSource(1_000_000, 1000, 200_000) // holds after 200K series, until canceled
	q, err := New(defaultConfig(t), Deps{Source: startSource(t, gen), Limits: newFakeLimits(t)})
	require.NoError(t, err)
	c := dialTest(t, serveBoth(t, q, headerAuth(t)).grpc, tenantA)
	before := heapInUse()

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := c.Query(ctx, client.InstantQuery{Expr: "count(gen)", Time: time.UnixMilli(t0)})
		done <- err
	}()
	require.Eventually(t, func() bool { return gen.sent.Load() >= 200_000 }, 30*time.Second, time.Millisecond)
	cancel()
	err = <-done
	require.Equal(t, codes.Canceled, status.Code(err), "%v", err)
	require.Eventually(t, gen.canceled.Load, 5*time.Second, time.Millisecond, "the source's stream was not canceled")
	// The 200K decoded series the query held are garbage once it is gone.
	require.Eventually(t, func() bool { return heapInUse() < before+16<<20 }, 5*time.Second, 50*time.Millisecond,
		"heap in use %d MiB, %d MiB before the query", heapInUse()>>20, before>>20)
}

// TestQueryServer_StopReading has a client stop reading a large answer
// after its first frame: the server's sends block on the stream's flow
// control rather than buffering the answer, and cancelling the call then
// ends the query. The client holds at most the frames in flight.
func TestQueryServer_StopReading(t *testing.T) {
	gen := newGeneratedSource(200_000, 1000, 0)
	q, err := New(defaultConfig(t), Deps{Source: startSource(t, gen), Limits: newFakeLimits(t)})
	require.NoError(t, err)
	c := dialTest(t, serveBoth(t, q, headerAuth(t)).grpc, tenantA)
	ctx, cancel := context.WithCancel(c.Context(t.Context()))
	stream, err := c.API().Query(ctx, &argusquerypb.QueryRequest{Query: "gen", TimeMs: ptr(t0)})
	require.NoError(t, err)
	first, err := stream.Recv()
	require.NoError(t, err)
	require.NotEmpty(t, first.GetSeries())
	time.Sleep(200 * time.Millisecond) // Nothing to poll: the server is blocked in Send, which is what is tested.
	cancel()
	for err == nil {
		_, err = stream.Recv()
	}
	require.Equal(t, codes.Canceled, status.Code(err), "%v", err)
}

func ptr[T any](v T) *T { return &v }
