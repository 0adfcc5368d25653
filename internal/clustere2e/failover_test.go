package clustere2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestKillOneIngester: under steady writes (100 series, one sample each per
// 100ms), kill -9 one of three ingesters (RF=3). Writes keep succeeding with
// a quorum of 2 of 3, also once the dead ingester is UNHEALTHY, and the
// querier stays exact. Restarted, the ingester replays its WAL and is ACTIVE
// again with the same tokens, and the querier fills the gap in its replica
// from the others.
//
//	writer ─▶ dist-0 ─▶ ing-0, ing-1 (kill -9, restart), ing-2 ◀─ querier-0
func TestKillOneIngester(t *testing.T) {
	skipIfShort(t)
	c := clustertest.StartCluster(t, clustertest.Topology{Ingesters: 3, Distributors: 1, Queriers: 1, RF: 3})
	q, victim := c.Querier(0), c.Ingester(1)
	tokens := victim.TokensFile(t)
	w := clustertest.StartWriter(t, c.Distributor(0).Process, clustertest.WriterOptions{Tenant: "team-kill"})

	requireStored(t, w, q, clustertest.ExpectFrom(waitPushes(t, w, 20)), "before the kill")
	victim.Kill(t)
	killedAt := time.Now()
	ackedBeforeKill := 0
	for _, r := range w.Results() {
		if r.Acked() && r.Answered.Before(killedAt) {
			ackedBeforeKill++
		}
	}
	requireStored(t, w, q, clustertest.ExpectFrom(waitPushes(t, w, 10)), "just after the kill")

	// Every process sees the dead ingester UNHEALTHY after the heartbeat
	// timeout; writes must still reach a quorum of the two others.
	clustertest.Eventually(t, func() string { return stateEverywhere(t, c, victim.ID(), clustertest.StateUnhealthy) }, 30*time.Second)
	t.Logf("%s UNHEALTHY everywhere %v after the kill", victim.ID(), time.Since(killedAt).Round(time.Millisecond))
	requireStored(t, w, q, clustertest.ExpectFrom(waitPushes(t, w, 10)), "with the ingester UNHEALTHY")

	victim.Restart(t)
	took := c.WaitRing(t, 3)
	t.Logf("%s ACTIVE again in every ring %v after its /ready", victim.ID(), took)
	require.Equal(t, tokens, victim.TokensFile(t), "tokens file changed across the restart")
	for id, rs := range c.RingViews(t) {
		in, ok := rs.Instance(victim.ID())
		require.True(t, ok, "%s does not list %s", id, victim.ID())
		require.Equal(t, len(tokens), in.Tokens, "token count of %s seen by %s", victim.ID(), id)
	}
	replayed := victim.Metric(t, "argus_ingester_wal_replay_samples_total", nil)
	t.Logf("%s replayed %v samples; %d pushes of 100 samples were acknowledged before the kill", victim.ID(), replayed, ackedBeforeKill)
	// A push is acknowledged at quorum (2 of 3), so the killed replica may
	// lack the last few acknowledged pushes, not more.
	require.GreaterOrEqual(t, replayed, float64(100*(ackedBeforeKill-5)), "WAL replay")

	requireStored(t, w, q, clustertest.ExpectFrom(waitPushes(t, w, 20)), "after the restart")
	results := w.Stop()
	clustertest.RequireAllAcked(t, results)
	requireStored(t, w, q, clustertest.ExpectFrom(results), "at the end")
}

// TestKillTwoIngesters: kill -9 two of three ingesters (RF=3). No push can
// reach a quorum: every push sent after both died answers 5xx (pushes in
// flight at the kills may go either way). Restarted, the ingesters rejoin;
// every acknowledged sample is readable, and pushing the failed requests
// again (what Prometheus's retry does, in order) succeeds and makes the
// store exact.
func TestKillTwoIngesters(t *testing.T) {
	skipIfShort(t)
	c := clustertest.StartCluster(t, clustertest.Topology{Ingesters: 3, Distributors: 1, Queriers: 1, RF: 3})
	q, d := c.Querier(0), c.Distributor(0)
	w := clustertest.StartWriter(t, d.Process, clustertest.WriterOptions{Tenant: "team-kill2"})
	requireStored(t, w, q, clustertest.ExpectFrom(waitPushes(t, w, 20)), "before the kills")
	quorumFailures := d.Metric(t, "argus_distributor_replication_quorum_failures_total", nil)

	c.Ingester(1).Kill(t)
	c.Ingester(2).Kill(t)
	downAt := time.Now()
	// Past the heartbeat timeout, so that both the "dead but listed ACTIVE"
	// and the "UNHEALTHY" rings are exercised.
	clustertest.Eventually(t, func() string { return stateEverywhere(t, c, c.Ingester(2).ID(), clustertest.StateUnhealthy) }, 30*time.Second)
	waitPushes(t, w, 10)
	results := w.Stop()

	var failed []clustertest.PushResult
	var bad []string
	for _, r := range results {
		if !r.Acked() {
			failed = append(failed, r)
		}
		if !r.Sent.After(downAt) {
			continue
		}
		if r.Status < 500 {
			bad = append(bad, r.String())
		}
	}
	require.Empty(t, bad, "pushes sent after two of three ingesters died must answer 5xx")
	require.NotEmpty(t, failed)
	t.Logf("%d of %d pushes failed; first: %s", len(failed), len(results), failed[0])
	require.Greater(t, d.Metric(t, "argus_distributor_replication_quorum_failures_total", nil), quorumFailures,
		"argus_distributor_replication_quorum_failures_total must count the failures")

	c.Ingester(1).Restart(t)
	c.Ingester(2).Restart(t)
	c.WaitRing(t, 3)
	activeAt := time.Now()
	requireStored(t, w, q, clustertest.ExpectFrom(results), "after the restarts, before the retries")

	// Push the failed requests again, in order, each retried on 5xx with
	// Prometheus's backoff until it lands, as a remote-write queue does.
	// The first one may need a few attempts: see retryPush.
	for i, r := range failed {
		attempts, took := retryPush(t, d, "team-kill2", w.Batch(r.Seq, r.T), 60*time.Second)
		if i == 0 || attempts > 1 {
			t.Logf("retry of push %d landed after %d attempts, %v (%v after every ring showed all ingesters ACTIVE)",
				r.Seq, attempts, took.Round(time.Millisecond), time.Since(activeAt).Round(time.Millisecond))
		}
	}
	requireStored(t, w, q, allAcked(results), "after the retries")
}

// retryPush pushes series until the answer is 204, retrying 5xx answers
// with a backoff from 50ms doubling up to 1s (Prometheus's queue_config of
// the harness), for at most timeout. Any other answer fails the test. It
// returns the number of attempts and the time they took.
//
// Right after the ring shows the restarted ingesters ACTIVE, a few pushes
// may still fail while the distributor's gRPC connections to them
// reconnect (backoff capped at 1s, cmd/argus reconnectParams); Prometheus
// retries them, and so does this.
func retryPush(t testing.TB, d *clustertest.Member, tenant string, series []clustertest.TimeSeries, timeout time.Duration) (attempts int, took time.Duration) {
	t.Helper()
	begin := time.Now()
	wait := 50 * time.Millisecond
	for {
		attempts++
		code, body := d.Push(t, tenant, series)
		if code == http.StatusNoContent {
			return attempts, time.Since(begin)
		}
		require.GreaterOrEqual(t, code, 500, "retried push answered %d (a 4xx is dropped, not retried): %s", code, body)
		require.Less(t, time.Since(begin), timeout, "push still fails after %d attempts in %v: %d %s", attempts, timeout, code, body)
		time.Sleep(wait) // the sender's retry backoff: what is under test
		wait = min(2*wait, time.Second)
	}
}

// stateEverywhere returns "" when every running process lists instance id
// in state.
func stateEverywhere(t testing.TB, c *clustertest.Cluster, id, state string) string {
	t.Helper()
	for _, m := range c.Running() {
		rs, err := m.TryRing(context.Background())
		if err != nil {
			return err.Error()
		}
		in, ok := rs.Instance(id)
		if !ok {
			return fmt.Sprintf("%s does not list %s", m.ID(), id)
		}
		if in.State != state {
			return fmt.Sprintf("%s sees %s %s, want %s", m.ID(), id, in.State, state)
		}
	}
	return ""
}
