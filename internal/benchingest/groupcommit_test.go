package benchingest

// BenchmarkGroupCommit: one op is the whole measurement (about 20 s), so
// run one op:
//
//	ARGUS_BIN=$PWD/bin/argus go test -run='^$' -bench=BenchmarkGroupCommit -benchtime=1x -count=1 ./internal/benchingest/

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

const (
	// commitPushers push one tenant at once, each its own series.
	commitPushers = 64
	// commitSeries is the series of one push, one sample each.
	commitSeries = 100
	// commitPhase is how long each phase pushes.
	commitPhase = 5 * time.Second
)

// BenchmarkGroupCommit measures what group commit buys with every push
// fsynced (-ingester.wal-sync-period=0). Group commit cannot be switched
// off, so its baseline is one pusher on the same process and disk: each of
// its pushes waits for an fsync of its own. It reports the pushes and
// samples per second of 1 pusher, of 64 concurrent pushers of one tenant
// and of 64 pushers of 64 tenants (100 series a push), the fsyncs per push
// of each (argus_ingester_wal_fsyncs_total: 1 when no push shares one),
// and the ratio of the 64 pushers' pushes per second to one pusher's.
func BenchmarkGroupCommit(b *testing.B) {
	var m map[string]float64
	for b.Loop() {
		m = measureGroupCommit(b)
	}
	for name, v := range m {
		b.ReportMetric(v, name)
	}
}

func measureGroupCommit(b *testing.B) map[string]float64 {
	p := clustertest.StartArgus(b, clustertest.Options{Flags: []string{
		"-log.level=warn", "-distributor.ingestion-rate-limit=0",
		"-ingester.max-global-series-per-user=0", "-ingester.max-global-series-per-metric=0",
		"-ingester.wal-sync-period=0",
	}})
	client := newClient(commitPushers)
	defer client.CloseIdleConnections()
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Second).UnixMilli()
	oneTenant := make([]*commitPusher, commitPushers)
	manyTenants := make([]*commitPusher, commitPushers)
	for i := range oneTenant {
		oneTenant[i] = newCommitPusher(i, tenant, base)
		manyTenants[i] = newCommitPusher(i, "bench-"+strconv.Itoa(i), base)
	}
	out := map[string]float64{}
	for _, phase := range []struct {
		name    string
		pushers []*commitPusher
	}{{"1-pusher", oneTenant[:1]}, {"64-pushers-1-tenant", oneTenant}, {"64-pushers-64-tenants", manyTenants}} {
		for _, c := range phase.pushers {
			if c.next == 0 {
				require.NoError(b, c.push(context.Background(), client, p.PushURL()), "creating the series")
			}
		}
		f0 := p.Metric(b, "argus_ingester_wal_fsyncs_total", nil)
		pushes, took := runCommitPushers(b, client, p.PushURL(), phase.pushers)
		synced := p.Metric(b, "argus_ingester_wal_fsyncs_total", nil) - f0
		perSec := float64(pushes) / took.Seconds()
		out[phase.name+"-pushes/s"] = perSec
		out[phase.name+"-samples/s"] = perSec * commitSeries
		out[phase.name+"-fsyncs/push"] = synced / float64(pushes)
		b.Logf("%s: %d pushes of %d samples in %v: %.0f pushes/s, %.0f fsyncs (%.3f a push)",
			phase.name, pushes, commitSeries, took.Round(time.Millisecond), perSec, synced, synced/float64(pushes))
	}
	for _, name := range []string{"64-pushers-1-tenant", "64-pushers-64-tenants"} {
		out[name+"-x-1-pusher"] = out[name+"-pushes/s"] / out["1-pusher-pushes/s"]
	}
	p.Stop(b)
	return out
}

// commitPusher pushes its own commitSeries series, one sample each, at
// strictly increasing timestamps.
type commitPusher struct {
	req    *arguspb.WriteRequest
	header http.Header // its tenant
	base   int64
	next   int
}

func newCommitPusher(id int, tenant string, base int64) *commitPusher {
	c := &commitPusher{req: &arguspb.WriteRequest{}, header: http.Header{clustertest.TenantHeader: {tenant}}, base: base}
	for s := range commitSeries {
		c.req.Timeseries = append(c.req.Timeseries, &arguspb.TimeSeries{
			Labels: []*arguspb.Label{
				{Name: "__name__", Value: "group_commit"},
				{Name: "pusher", Value: strconv.Itoa(id)},
				{Name: "s", Value: strconv.Itoa(s)},
			},
			Samples: []*arguspb.Sample{{}},
		})
	}
	return c
}

func (c *commitPusher) push(ctx context.Context, client *http.Client, url string) error {
	for _, ts := range c.req.Timeseries {
		ts.Samples[0].TimestampMs, ts.Samples[0].Value = c.base+int64(c.next), float64(c.next)
	}
	c.next++
	raw, err := c.req.MarshalVT()
	if err != nil {
		return err
	}
	return clustertest.PostRemoteWrite(ctx, client, url, c.header, snappy.Encode(nil, raw))
}

// runCommitPushers runs pushers, each pushing one push after the other, for
// commitPhase, and returns how many pushes were answered and in what time.
func runCommitPushers(b *testing.B, client *http.Client, url string, pushers []*commitPusher) (int, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), commitPhase)
	defer cancel()
	counts := make([]int, len(pushers))
	errs := make([]error, len(pushers))
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range pushers {
		wg.Go(func() {
			for ctx.Err() == nil {
				// The last push may be cut by the deadline: not counted.
				if err := c.push(ctx, client, url); err != nil {
					if ctx.Err() == nil {
						errs[i] = err
					}
					return
				}
				counts[i]++
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	total := 0
	for i := range pushers {
		require.NoError(b, errs[i])
		total += counts[i]
	}
	return total, took
}
