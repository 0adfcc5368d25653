package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// Overload2x: the shape of TestOverloadTwiceCapacity.
const (
	// overload2xInflight is -distributor.instance-limits.max-inflight-push-requests:
	// what an operator sets so that the pushes a process holds at once, and
	// so its memory, are bounded.
	overload2xInflight = 32
	// overload2xLanes is how many pushers offer the overload: more than
	// the process admits at once, so that the excess is refused.
	overload2xLanes = 256
	// overload2xMeasurers is how many closed-loop pushers measure the
	// capacity (fewer than the limit: none of them is refused).
	overload2xMeasurers = 8
	// overload2xSeries is the series of one push (one sample each).
	overload2xSeries = 250
	// overload2xMaxRSSKB is the documented bound of the process's peak RSS
	// (VmHWM) through the whole test. Its heads hold 66K series and a few
	// million samples, and it admits at most overload2xInflight pushes of
	// about 25 KB decoded at once; the pushes over that are refused before
	// they are decoded. Measured on the 2-core test machine: 144–154 MB
	// (225 MB with 128 pushers of 500 series).
	overload2xMaxRSSKB = 300 * 1024
)

// TestOverloadTwiceCapacity first measures what an all-in-one argus can
// ingest on this machine (samples/s acknowledged by closed-loop pushers
// below the instance limit), then offers it about twice that rate from
// overload2xLanes rate-controlled pushers for a while, and then drops the
// load. Throughput is measured, never asserted. Asserted: under the
// overload every push is answered either 2xx or 429/5xx with Retry-After and
// an error ID, and some are refused (the load did exceed what the process
// admits); the process stays up with its peak RSS under overload2xMaxRSSKB;
// every acknowledged sample is stored exactly and no refused one is (the
// count of every stored sample, and two whole series of every pusher); and
// once the load is gone, pushes are acknowledged again.
func TestOverloadTwiceCapacity(t *testing.T) {
	skipIfShort(t)
	if runtime.GOOS != "linux" {
		t.Skip("reads the peak RSS in /proc")
	}
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{
		"-distributor.ingestion-rate-limit=0",
		"-ingester.max-global-series-per-user=0",
		"-ingester.max-global-series-per-metric=0",
		"-distributor.instance-limits.max-inflight-push-requests=" + strconv.Itoa(overload2xInflight),
	}})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: overload2xLanes + overload2xMeasurers}}
	defer client.CloseIdleConnections()
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Second).UnixMilli()

	// Capacity: closed-loop pushers, each pushing as soon as its last push
	// is answered.
	var lanes []*overloadLane
	measure := runLanes(t, client, a, base, 0, overload2xMeasurers, 8*time.Second, 0)
	lanes = append(lanes, measure.lanes...)
	capacity := float64(measure.acked*overload2xSeries) / measure.took.Seconds()
	t.Logf("capacity: %.0f samples/s acknowledged by %d closed-loop pushers of %d series (%d pushes, %d refused)",
		capacity, overload2xMeasurers, overload2xSeries, measure.acked, measure.refused)
	require.Positive(t, measure.acked)

	// Overload: twice that, spread over the lanes, each at its own pace.
	every := time.Duration(float64(time.Second) * overload2xLanes * overload2xSeries / (2 * capacity))
	over := runLanes(t, client, a, base, overload2xMeasurers, overload2xLanes, 15*time.Second, every)
	lanes = append(lanes, over.lanes...)
	offered := float64(over.sent*overload2xSeries) / over.took.Seconds()
	peak := statusKB(t, a.PID(), "VmHWM")
	t.Logf("overload: %d pushers each every %v: offered %.0f samples/s (%.2fx capacity; %d ticks missed while a push was out), acknowledged %.0f samples/s; %d pushes acknowledged, %d refused with Retry-After (%v); peak RSS %d KB (bound %d KB)",
		overload2xLanes, every, offered, offered/capacity, over.missed, float64(over.acked*overload2xSeries)/over.took.Seconds(),
		over.acked, over.refused, over.codes, peak, overload2xMaxRSSKB)
	require.Positive(t, over.refused, "the overload was never refused: it did not exceed what the process admits")
	require.Positive(t, over.acked)
	require.Less(t, peak, overload2xMaxRSSKB)
	require.True(t, a.Running())

	// The load is gone: one pusher at a time is admitted, every push.
	after := newOverloadLane(overload2xMeasurers+overload2xLanes, base)
	after.push(t, client, a, 20)
	lanes = append(lanes, after)
	require.Len(t, after.acked, 20, "pushes after the overload: refused %v", after.refusedCodes)

	checkLanesStored(t, a, base, lanes)
}

// overloadLane is one sequential pusher of its own overload2xSeries series:
// push k carries one sample per series at base+k ms with value k.
type overloadLane struct {
	id    int
	base  int64 // ms
	req   *arguspb.WriteRequest
	next  int     // the next push's k
	acked []int64 // timestamps of the acknowledged pushes
	// refusedCodes counts the refusals by status.
	refusedCodes map[int]int
	err          error    // an answer that is neither
	bodies       [][]byte // the encoded next pushes, if prepared
}

func newOverloadLane(id int, base int64) *overloadLane {
	l := &overloadLane{id: id, base: base, req: &arguspb.WriteRequest{}, refusedCodes: map[int]int{}}
	for s := range overload2xSeries {
		l.req.Timeseries = append(l.req.Timeseries, &arguspb.TimeSeries{
			Labels: []*arguspb.Label{
				{Name: "__name__", Value: "overload2x"},
				{Name: "lane", Value: strconv.Itoa(id)},
				{Name: "s", Value: strconv.Itoa(s)},
			},
			Samples: []*arguspb.Sample{{}},
		})
	}
	return l
}

// pushOnce sends the lane's next push and records its answer; it returns
// false on an answer that is neither an acknowledgement nor a refusal with
// Retry-After and an error ID (recorded in l.err).
func (l *overloadLane) pushOnce(client *http.Client, a *clustertest.Process) bool {
	k, base := l.next, l.base
	l.next++
	var req []byte
	if len(l.bodies) > 0 {
		req, l.bodies = l.bodies[0], l.bodies[1:]
	} else if req, l.err = l.encode(k); l.err != nil {
		return false
	}
	code, retryAfter, body, err := postPush(client, a.PushURL(), req)
	switch {
	case err != nil:
		l.err = fmt.Errorf("lane %d push %d: %w", l.id, k, err)
		return false
	case code/100 == 2:
		l.acked = append(l.acked, base+int64(k))
	case (code == http.StatusTooManyRequests || code >= 500) && retryAfter != "" && strings.HasPrefix(body, "err-argus-"):
		l.refusedCodes[code]++
	default:
		l.err = fmt.Errorf("lane %d push %d: %d (Retry-After %q): %s", l.id, k, code, retryAfter, body)
		return false
	}
	return true
}

// encode returns the body of push k.
func (l *overloadLane) encode(k int) ([]byte, error) {
	for _, ts := range l.req.Timeseries {
		ts.Samples[0].TimestampMs, ts.Samples[0].Value = l.base+int64(k), float64(k)
	}
	raw, err := l.req.MarshalVT()
	if err != nil {
		return nil, err
	}
	return snappy.Encode(nil, raw), nil
}

// prepare encodes the lane's next n pushes beforehand, so that the load
// generator, which shares the machine's cores with the process it loads,
// spends them on sending.
func (l *overloadLane) prepare(n int) error {
	for k := l.next + len(l.bodies); len(l.bodies) < n; k++ {
		body, err := l.encode(k)
		if err != nil {
			return err
		}
		l.bodies = append(l.bodies, body)
	}
	return nil
}

// push sends n pushes one after the other, failing the test on an answer
// that is neither acknowledgement nor refusal.
func (l *overloadLane) push(t *testing.T, client *http.Client, a *clustertest.Process, n int) {
	t.Helper()
	for range n {
		require.True(t, l.pushOnce(client, a), "%v", l.err)
	}
}

// laneRun sums up runLanes.
type laneRun struct {
	lanes                []*overloadLane
	sent, acked, refused int
	missed               int64 // ticks that came while the lane's push was out
	codes                map[int]int
	took                 time.Duration
}

// runLanes runs lanes [first, first+n) for d: closed-loop when every is 0,
// else each pushing once every `every` (its start staggered), skipping the
// ticks that come while its push is out.
func runLanes(t *testing.T, client *http.Client, a *clustertest.Process, base int64, first, n int, d, every time.Duration) laneRun {
	t.Helper()
	r := laneRun{codes: map[int]int{}}
	prepared := 1500 // a closed-loop lane's pushes: more than it sends in 8 s on this machine
	if every > 0 {
		prepared = int(d/every) + 2
	}
	for i := range n {
		l := newOverloadLane(first+i, base)
		require.NoError(t, l.prepare(prepared))
		r.lanes = append(r.lanes, l)
	}
	var missed atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i, l := range r.lanes {
		wg.Go(func() {
			if every == 0 {
				for ctx.Err() == nil && l.pushOnce(client, a) {
				}
				return
			}
			time.Sleep(every * time.Duration(i) / time.Duration(n)) // stagger
			for next := time.Now(); ctx.Err() == nil; {
				if !l.pushOnce(client, a) {
					return
				}
				next = next.Add(every)
				for now := time.Now(); next.Before(now); next = next.Add(every) {
					missed.Add(1)
				}
				select {
				case <-ctx.Done():
				case <-time.After(time.Until(next)):
				}
			}
		})
	}
	wg.Wait()
	r.took = time.Since(start)
	r.missed = missed.Load()
	for _, l := range r.lanes {
		require.NoError(t, l.err)
		l.bodies = nil // Not sent: the next push (after the overload) encodes its own.
		r.sent += l.next
		r.acked += len(l.acked)
		for c, k := range l.refusedCodes {
			r.codes[c] += k
			r.refused += k
		}
	}
	return r
}

// checkLanesStored requires that the store holds exactly the acknowledged
// pushes of every lane: as many samples in all as were acknowledged, and
// exactly the acknowledged timestamps in the first and last series of
// every lane.
func checkLanesStored(t *testing.T, a *clustertest.Process, base int64, lanes []*overloadLane) {
	t.Helper()
	acked, end := 0, base
	for _, l := range lanes {
		acked += len(l.acked) * overload2xSeries
		end = max(end, base+int64(l.next))
	}
	window := fmt.Sprintf("%dms", end-base+1)
	code, body := a.Query(t, overloadTenant, clustertest.PromAPI+"/query", url.Values{
		"query": {"sum(count_over_time(overload2x[" + window + "]))"},
		"time":  {clustertest.FormatAPITime(end)},
	})
	require.Equal(t, mustJSON(t, fmt.Sprintf(`[{"metric":{},"value":[%s,"%d"]}]`, clustertest.JSONTimestamp(end), acked)),
		apiData(t, code, body).(map[string]any)["result"], "every stored sample")
	for _, s := range []int{0, overload2xSeries - 1} {
		got := rawSamples(t, a, overloadTenant, fmt.Sprintf(`overload2x{s="%d"}`, s), end, time.Duration(end-base+1)*time.Millisecond)
		byLane := map[string][]int64{}
		for _, ser := range got {
			for _, smp := range ser.Samples {
				byLane[ser.Metric["lane"]] = append(byLane[ser.Metric["lane"]], smp.T)
			}
		}
		for _, l := range lanes {
			require.Equal(t, l.acked, byLane[strconv.Itoa(l.id)], "lane %d series %d", l.id, s)
			require.True(t, slices.IsSorted(l.acked))
		}
	}
}

// postPush sends a remote-write body for overloadTenant and returns the
// status, the Retry-After header and the body.
func postPush(client *http.Client, pushURL string, body []byte) (code int, retryAfter, respBody string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, pushURL, bytes.NewReader(body))
	if err != nil {
		return 0, "", "", err
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set(clustertest.TenantHeader, overloadTenant)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(b), err
}
