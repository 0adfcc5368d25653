package clustere2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestKillTwoOfSixIngesters: 6 ingesters at RF=3 without zones, steady
// writes, kill -9 two ingesters. The heartbeat timeout is set to 5 minutes,
// so that only memberlist's failure detector (seconds) can take the dead
// ingesters out of the write path: writes must resume well within the
// test's wait, and then every push must be acknowledged. Reads still count
// the dead ingesters (their heartbeats are fresh) and lose two replicas of
// some series, more than RF=3 tolerates: a plain query answers the
// contract's 503 with its ID, a query with partial_response=true answers
// 200 with a warning naming both dead ingesters.
//
//	writer ─▶ dist-0 ─▶ ing-0..ing-3, ing-4 (kill -9), ing-5 (kill -9) ◀─ querier-0
func TestKillTwoOfSixIngesters(t *testing.T) {
	skipIfShort(t)
	c := clustertest.StartCluster(t, clustertest.Topology{
		Ingesters: 6, Distributors: 1, Queriers: 1, RF: 3,
		ExtraFlags: []string{"-ingester.ring.heartbeat-timeout=5m"},
	})
	q, d := c.Querier(0), c.Distributor(0)
	const tenant = "team-blast"
	w := clustertest.StartWriter(t, d.Process, clustertest.WriterOptions{Tenant: tenant})
	requireStored(t, w, q, clustertest.ExpectFrom(waitPushes(t, w, 10)), "before the kills")

	ring := q.Ring(t)
	var deadAddrs []string
	for _, m := range []*clustertest.Member{c.Ingester(4), c.Ingester(5)} {
		in, ok := ring.Instance(m.ID())
		require.True(t, ok)
		deadAddrs = append(deadAddrs, in.Addr)
		m.Kill(t)
	}
	killedAt := time.Now()

	// Writes resume: some push sent after the kills is acknowledged, then
	// twenty in a row are, long before the 5 minute heartbeat timeout.
	var resumedAt time.Time
	clustertest.Eventually(t, func() string {
		rs := w.Results()
		streak := 0
		for _, r := range rs {
			switch {
			case !r.Sent.After(killedAt):
			case r.Acked():
				if streak == 0 {
					resumedAt = r.Sent
				}
				streak++
			default:
				streak = 0
			}
		}
		if streak < 20 {
			return fmt.Sprintf("%d pushes acknowledged in a row since the kills", streak)
		}
		return ""
	}, 90*time.Second)
	failedAfter := 0
	for _, r := range w.Results() {
		if r.Sent.After(killedAt) && !r.Acked() {
			failedAfter++
			require.GreaterOrEqual(t, r.Status, 500, "a push failed by the kills must be retried: %s", r)
		}
	}
	t.Logf("writes resumed %v after the kills (%d pushes failed in between; heartbeat timeout 5m)",
		resumedAt.Sub(killedAt).Round(time.Millisecond), failedAfter)

	// Reads: two of RF=3 replicas may be gone for some series.
	query := url.Values{"query": {`count(clustertest_steady)`}}
	code, body := q.Query(t, tenant, clustertest.PromAPI+"/query", query)
	require.Equal(t, http.StatusServiceUnavailable, code, string(body))
	require.Contains(t, string(body), "err-argus-query-unavailable")
	for _, a := range deadAddrs {
		require.Contains(t, string(body), a)
	}

	query.Set("partial_response", "true")
	code, body = q.Query(t, tenant, clustertest.PromAPI+"/query", query)
	require.Equal(t, http.StatusOK, code, string(body))
	resp := clustertest.DecodeAPI(t, body)
	require.Equal(t, "success", resp.Status)
	require.Len(t, resp.Warnings, 1, string(body))
	require.True(t, strings.HasPrefix(resp.Warnings[0], "partial response: "), resp.Warnings[0])
	for _, a := range deadAddrs {
		require.Contains(t, resp.Warnings[0], a)
	}
	require.Contains(t, string(resp.Data), `"value"`, "the partial answer has the count")
	t.Logf("partial response: %s", clustertest.Truncate(resp.Warnings[0], 400))
	w.Stop()
}

// TestKillWholeZone: 3 zones of 2 ingesters with zone-aware replication
// (RF=3: one replica of every series per zone), steady writes, kill -9 both
// ingesters of one zone. Every series keeps a quorum in the two other
// zones, so no push fails, before or after the failure detector and the
// heartbeat timeout take the zone out, and every query stays exact.
//
//	writer ─▶ dist-0 ─▶ zone-a: ing-0 ing-1 │ zone-b: ing-2 ing-3 │ zone-c: ing-4 ing-5 (kill -9) ◀─ querier-0
func TestKillWholeZone(t *testing.T) {
	skipIfShort(t)
	c := clustertest.StartCluster(t, clustertest.Topology{
		Ingesters: 6, Distributors: 1, Queriers: 1, RF: 3,
		// Every process reads the ring with zones; Validate wants a zone of
		// the distributor and the querier too, which they do not use.
		ExtraFlags: []string{"-ingester.ring.zone-awareness-enabled=true", "-ingester.ring.instance-availability-zone=zone-a"},
		IngesterFlags: func(i int) []string {
			return []string{"-ingester.ring.instance-availability-zone=zone-" + string(rune('a'+i/2))}
		},
	})
	q, d := c.Querier(0), c.Distributor(0)
	for _, in := range q.Ring(t).Instances {
		require.NotEmpty(t, in.Zone, in.ID)
	}
	w := clustertest.StartWriter(t, d.Process, clustertest.WriterOptions{Tenant: "team-zone"})
	requireStored(t, w, q, clustertest.ExpectFrom(waitPushes(t, w, 10)), "before the kills")

	c.Ingester(4).Kill(t)
	c.Ingester(5).Kill(t)
	requireStored(t, w, q, clustertest.ExpectFrom(waitPushes(t, w, 10)), "just after the kills")
	clustertest.Eventually(t, func() string { return stateEverywhere(t, c, c.Ingester(5).ID(), clustertest.StateUnhealthy) }, 30*time.Second)
	requireStored(t, w, q, clustertest.ExpectFrom(waitPushes(t, w, 10)), "with zone-c UNHEALTHY")
	results := w.Stop()
	clustertest.RequireAllAcked(t, results)
	requireStored(t, w, q, clustertest.ExpectFrom(results), "at the end")
}
