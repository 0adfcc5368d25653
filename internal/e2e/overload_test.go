package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/clustertest"
)

// overloadMaxRSSKB is the documented bound of the peak RSS (VmHWM) of an
// all-in-one argus refusing an overload with the instance limits of
// TestOverload: the pushes it admits are bounded, so its memory is.
const overloadMaxRSSKB = 150 * 1024

const overloadTenant = "overload"

// TestOverload pushes an all-in-one argus with four times the concurrent
// pushes its -distributor.instance-limits.max-inflight-push-requests admits,
// every push fsynced (-ingester.wal-sync-period=0), for a bounded number of
// rounds. The pushes over the limit get a 503 with Retry-After and the
// instance-limit ID; the peak RSS stays under overloadMaxRSSKB; every
// acknowledged sample is queryable afterwards, and none of a refused push
// is; and a push succeeds once the load is gone.
func TestOverload(t *testing.T) {
	skipIfShort(t)
	if runtime.GOOS != "linux" {
		t.Skip("reads the peak RSS in /proc")
	}
	const inflight, pushers, rounds, seriesPerPush = 4, 16, 60, 200
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{
		"-distributor.ingestion-rate-limit=0",
		"-ingester.wal-sync-period=0",
		"-distributor.instance-limits.max-inflight-push-requests=" + strconv.Itoa(inflight),
		"-ingester.instance-limits.max-inflight-push-requests=" + strconv.Itoa(inflight),
	}})
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Second).UnixMilli()
	batch := func(p, round int) []clustertest.TimeSeries {
		out := make([]clustertest.TimeSeries, seriesPerPush)
		for s := range out {
			out[s] = clustertest.TimeSeries{
				Labels:  clustertest.Labels("__name__", "overload", "pusher", strconv.Itoa(p), "s", strconv.Itoa(s)),
				Samples: []clustertest.Sample{{T: base + int64(round), V: float64(round)}},
			}
		}
		return out
	}

	acked := make([][]int64, pushers) // acked[p]: the timestamps of p's acknowledged pushes
	refused := make([]int, pushers)
	errs := make(chan error, pushers)
	var wg sync.WaitGroup
	for p := range pushers {
		wg.Go(func() {
			for round := range rounds {
				req, err := http.NewRequest(http.MethodPost, a.PushURL(), bytes.NewReader(clustertest.EncodeWriteRequest(t, batch(p, round))))
				if err != nil {
					errs <- err
					return
				}
				code, retryAfter, body, err := doPush(req)
				switch {
				case err != nil:
					errs <- err
					return
				case code == http.StatusNoContent:
					acked[p] = append(acked[p], base+int64(round))
				case code == http.StatusServiceUnavailable && retryAfter != "" &&
					(strings.HasPrefix(body, string(apierror.DistributorOverload)+":") || strings.HasPrefix(body, string(apierror.IngesterOverloaded)+":")):
					refused[p]++
				default:
					errs <- fmt.Errorf("pusher %d round %d: %d (Retry-After %q): %s", p, round, code, retryAfter, body)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	require.NoError(t, <-errs)

	total, ackedTotal := 0, 0
	for p := range pushers {
		total += refused[p]
		ackedTotal += len(acked[p])
	}
	peak := statusKB(t, a.PID(), "VmHWM")
	t.Logf("%d pushes of %d series: %d acknowledged, %d refused with 503 and Retry-After; peak RSS %d KB (bound %d KB)",
		pushers*rounds, seriesPerPush, ackedTotal, total, peak, overloadMaxRSSKB)
	require.Positive(t, total, "the load should have passed the instance limit")
	require.Positive(t, ackedTotal)
	require.Less(t, peak, overloadMaxRSSKB)

	// Every acknowledged push is stored, every refused one is not: two
	// series of each pusher hold exactly the acknowledged timestamps.
	end := base + rounds
	for p := range pushers {
		for _, s := range []int{0, seriesPerPush - 1} {
			sel := fmt.Sprintf(`overload{pusher="%d",s="%d"}`, p, s)
			got := rawSamples(t, a, overloadTenant, sel, end, time.Duration(rounds+1)*time.Millisecond)
			var ts []int64
			if len(got) == 1 {
				for _, smp := range got[0].Samples {
					ts = append(ts, smp.T)
				}
			}
			require.Equal(t, acked[p], ts, "pusher %d series %d", p, s)
		}
	}

	// The load is gone: a push is admitted again.
	pushOK(t, a, overloadTenant, batch(0, rounds))
	require.True(t, slices.IsSorted(acked[0]))
}

// doPush sends req with the remote-write headers and returns the status,
// the Retry-After header and the body.
func doPush(req *http.Request) (code int, retryAfter, body string, err error) {
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set(clustertest.TenantHeader, overloadTenant)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, rerr := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if rerr != nil {
			break
		}
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), sb.String(), nil
}
