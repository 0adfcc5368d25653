package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestAllInOneLocalPush checks, through the real binary, that the
// all-in-one's distributor pushes to its own ingester in-process
// (argus_distributor_local_ingester_pushes_total counts every push that
// reaches it) and answers as the same process pushing over gRPC
// (-distributor.local-ingester-pushes=false): accepted samples, samples
// rejected by the ingester with their err-argus IDs, the per-tenant series
// limit, and what is stored.
func TestAllInOneLocalPush(t *testing.T) {
	skipIfShort(t)
	limit := "-ingester.max-global-series-per-user=3"
	local := clustertest.StartArgus(t, clustertest.Options{Flags: []string{limit}})
	remote := clustertest.StartArgus(t, clustertest.Options{Flags: []string{limit, "-distributor.local-ingester-pushes=false"}})

	now := time.Now().Truncate(time.Second).UnixMilli()
	s := func(name string, v float64, t int64) clustertest.TimeSeries {
		return clustertest.TimeSeries{Labels: clustertest.Labels("__name__", name, "job", "j"), Samples: []clustertest.Sample{{T: t, V: v}}}
	}
	pushes := []struct {
		name   string
		series []clustertest.TimeSeries
		code   int
	}{
		{"good", []clustertest.TimeSeries{s("a", 1, now), s("b", 1, now)}, http.StatusNoContent},
		{"out of order", []clustertest.TimeSeries{s("a", 2, now-60_000), s("b", 2, now+1000)}, http.StatusBadRequest},
		{"series limit", []clustertest.TimeSeries{s("c", 1, now), s("d", 1, now), s("a", 3, now+2000)}, http.StatusBadRequest},
	}
	for _, p := range pushes {
		lc, lb := local.Push(t, "t1", p.series)
		rc, rb := remote.Push(t, "t1", p.series)
		require.Equal(t, p.code, rc, "%s over gRPC: %s", p.name, rb)
		require.Equal(t, rc, lc, p.name)
		require.Equal(t, rb, lb, p.name)
	}
	const name = "argus_distributor_local_ingester_pushes_total"
	require.Equal(t, float64(len(pushes)), local.Metric(t, name, nil), "every push went in-process")
	require.Equal(t, 0.0, remote.Metric(t, name, nil), "no push went in-process")
	stored := rawSamples(t, remote, "t1", `{job="j"}`, now+5000, time.Hour)
	require.Len(t, stored, 3, "a, b and c; d was over the limit")
	require.Equal(t, stored, rawSamples(t, local, "t1", `{job="j"}`, now+5000, time.Hour))
}
