package clustere2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestScaleOut: under steady writes, grow the ring from 3 to 6 ingesters
// (RF=3) one at a time. Series move to the new ingesters as they turn
// ACTIVE; no push may fail, and the querier must stay exact after each
// addition, while the samples of a series are split between old and new
// replicas.
func TestScaleOut(t *testing.T) {
	skipIfShort(t)
	c := clustertest.StartCluster(t, clustertest.Topology{Ingesters: 3, Distributors: 1, Queriers: 1, RF: 3})
	q := c.Querier(0)
	w := clustertest.StartWriter(t, c.Distributor(0).Process, clustertest.WriterOptions{Tenant: "team-scale"})
	requireStored(t, w, q, clustertest.ExpectFrom(waitPushes(t, w, 20)), "3 ingesters")

	for n := 4; n <= 6; n++ {
		ing := c.AddIngester(t)
		requireStored(t, w, q, clustertest.ExpectFrom(w.Results()), fmt.Sprintf("%s ready", ing.ID()))
		took := c.WaitRing(t, n)
		t.Logf("%s ACTIVE in every ring %v after its /ready", ing.ID(), took)
		requireStored(t, w, q, clustertest.ExpectFrom(waitPushes(t, w, 10)), fmt.Sprintf("%d ingesters", n))
	}
	results := waitPushes(t, w, 10)
	// The new ingesters must own series, or the scenario proves nothing.
	for _, ing := range c.Ingesters()[3:] {
		require.Positive(t, ing.Metric(t, "argus_ingester_samples_appended_total", nil), "%s got no samples", ing.ID())
	}
	requireStored(t, w, q, clustertest.ExpectFrom(results), "6 ingesters")
	results = w.Stop()
	clustertest.RequireAllAcked(t, results)
	requireStored(t, w, q, clustertest.ExpectFrom(results), "at the end")
}

// TestGracefulStop: under steady writes, SIGTERM one of four ingesters
// (RF=3). Every other process sees it go LEAVING and then LEFT (or drop it),
// never back, and the distributor sees LEAVING; the stop takes about the
// leave delay; no push fails, and the querier stays exact, reading the
// samples the leaver held from the other replicas.
func TestGracefulStop(t *testing.T) {
	skipIfShort(t)
	// The leaver holds LEAVING for 3s, not the default 1s: the watchers
	// sample each observer's /ring, and on a loaded machine (the CI runs
	// other suites alongside) a 1s window was once missed by all of them,
	// though the state had gossiped. The property is the same.
	c := clustertest.StartCluster(t, clustertest.Topology{Ingesters: 4, Distributors: 1, Queriers: 1, RF: 3,
		IngesterFlags: func(int) []string { return []string{"-ingester.ring.leave-propagation-delay=3s"} }})
	q, leaver := c.Querier(0), c.Ingester(3)
	w := clustertest.StartWriter(t, c.Distributor(0).Process, clustertest.WriterOptions{Tenant: "team-leave"})
	requireStored(t, w, q, clustertest.ExpectFrom(waitPushes(t, w, 20)), "4 ingesters")

	var observers []*clustertest.Member
	for _, m := range c.Running() {
		if m != leaver {
			observers = append(observers, m)
		}
	}
	d := c.Distributor(0)
	in, ok := d.Ring(t).Instance(leaver.ID())
	require.True(t, ok)
	failuresToLeaver := func() float64 {
		return d.Metric(t, "argus_distributor_ingester_push_failures_total", map[string]string{"ingester": in.Addr})
	}
	failuresBefore := failuresToLeaver()
	watch := watchStates(observers, leaver.ID())
	took := leaver.Stop(t)
	t.Logf("%s stopped gracefully in %v", leaver.ID(), took)
	clustertest.Eventually(t, func() string { return leftEverywhere(t, c, leaver.ID()) }, 30*time.Second)
	// The watchers poll on their own schedule: wait until each has seen
	// the end too, so that the sequences are complete.
	clustertest.Eventually(t, func() string {
		for id, states := range watch.snapshot() {
			if last := states[len(states)-1]; last != clustertest.StateLeft && last != stateAbsent {
				return fmt.Sprintf("%s last saw %s %s", id, leaver.ID(), last)
			}
		}
		return ""
	}, 10*time.Second)
	seen := watch.stop()
	for id, states := range seen {
		t.Logf("%s saw %s go %s", id, leaver.ID(), strings.Join(states, " → "))
		require.True(t, isLeaveSequence(states), "%s saw %s go %v", id, leaver.ID(), states)
	}
	// The lifecycler holds LEAVING for -ingester.ring.leave-propagation-delay
	// (3s here) before the ingester stops taking pushes, so that distributors
	// stop routing to it first. Every process logs the states gossip changed
	// (ring/kv.go), which, unlike the watchers' sampling, misses none: the
	// distributor must have logged LEAVING.
	for _, m := range observers {
		logged := strings.Contains(m.Log(t), fmt.Sprintf(`msg="ring instance state changed" component=ring instance=%s from=ACTIVE to=LEAVING`, leaver.ID()))
		t.Logf("%s logged %s going LEAVING: %v", m.ID(), leaver.ID(), logged)
		if m == d {
			require.True(t, logged, "%s never logged %s going LEAVING", m.ID(), leaver.ID())
		}
	}
	// A graceful stop is the leave delay and a small flush. One near the
	// 30s -server.graceful-shutdown-timeout means something held it: the
	// distributor's push stream once held the gRPC server's stop for 24s.
	require.Less(t, took, 20*time.Second, "%s took %v to stop gracefully", leaver.ID(), took)

	requireStored(t, w, q, clustertest.ExpectFrom(waitPushes(t, w, 20)), "3 ingesters left")
	t.Logf("pushes from %s to %s that failed during its graceful stop: %v", d.ID(), leaver.ID(), failuresToLeaver()-failuresBefore)
	results := w.Stop()
	clustertest.RequireAllAcked(t, results)
	requireStored(t, w, q, clustertest.ExpectFrom(results), "at the end")
	require.Empty(t, c.RingDiff(t, 3))
}

// stateAbsent stands for an instance that the ring no longer lists.
const stateAbsent = "(absent)"

// stateWatch polls the /ring of every observer every 20ms in goroutines
// and records, per observer, the successive states of one instance.
type stateWatch struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	seen   map[string][]string // guarded by mu
}

// watchStates starts a stateWatch of instance id; call stop to end it.
func watchStates(observers []*clustertest.Member, id string) *stateWatch {
	ctx, cancel := context.WithCancel(context.Background())
	sw := &stateWatch{cancel: cancel, seen: map[string][]string{}}
	for _, m := range observers {
		sw.wg.Go(func() {
			for ctx.Err() == nil {
				if rs, err := m.TryRing(ctx); err == nil {
					state := stateAbsent
					if in, ok := rs.Instance(id); ok {
						state = in.State
					}
					sw.record(m.ID(), state)
				}
				select {
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
		})
	}
	return sw
}

func (sw *stateWatch) record(observer, state string) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if s := sw.seen[observer]; len(s) == 0 || s[len(s)-1] != state {
		sw.seen[observer] = append(s, state)
	}
}

// snapshot returns a copy of the sequences so far.
func (sw *stateWatch) snapshot() map[string][]string {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	out := make(map[string][]string, len(sw.seen))
	for k, v := range sw.seen {
		out[k] = slices.Clone(v)
	}
	return out
}

// stop ends the polling and returns the sequences.
func (sw *stateWatch) stop() map[string][]string {
	sw.cancel()
	sw.wg.Wait()
	return sw.snapshot()
}

// isLeaveSequence reports whether states only move forward along ACTIVE →
// LEAVING → LEFT → absent (skipping allowed) and end in LEFT or absent.
func isLeaveSequence(states []string) bool {
	order := []string{clustertest.StateActive, clustertest.StateLeaving, clustertest.StateLeft, stateAbsent}
	last := -1
	for _, s := range states {
		i := slices.Index(order, s)
		if i < last || i < 0 {
			return false
		}
		last = i
	}
	return last >= 2
}

// leftEverywhere returns "" when every running process lists instance id
// as LEFT or not at all.
func leftEverywhere(t testing.TB, c *clustertest.Cluster, id string) string {
	t.Helper()
	for _, m := range c.Running() {
		rs, err := m.TryRing(context.Background())
		if err != nil {
			return err.Error()
		}
		if in, ok := rs.Instance(id); ok && in.State != clustertest.StateLeft {
			return fmt.Sprintf("%s sees %s %s", m.ID(), id, in.State)
		}
	}
	return ""
}
