package clustere2e

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestAdminFanOut deletes through the querier of a cluster of three
// ingesters at RF=3: the querier merges the replicas, so the deleted
// samples are gone from its answers only if every ingester masks them.
// With one ingester killed the deletion answers 503 (and may be retried);
// once it is back, the retry answers 204 and the answers are exact again.
// status/tsdb divides the three replicas' counts by RF.
//
//	test ─▶ dist-0 ─▶ ing-0, ing-1 (kill -9, restart), ing-2 ◀─ querier-0 ◀─ delete_series
func TestAdminFanOut(t *testing.T) {
	skipIfShort(t)
	c := clustertest.StartCluster(t, clustertest.Topology{Ingesters: 3, Distributors: 1, Queriers: 1, RF: 3,
		ExtraFlags: []string{"-api.enable-admin-api=true"}})
	const tenant = "team-admin"
	q := c.Querier(0)
	end := time.Now().Add(-time.Second).Truncate(time.Second).UnixMilli()
	var series []clustertest.TimeSeries
	for s := range 4 {
		ts := clustertest.TimeSeries{Labels: clustertest.Labels("__name__", "m", "s", fmt.Sprint(s))}
		for i := range 30 {
			ts.Samples = append(ts.Samples, clustertest.Sample{T: end - int64(29-i)*1000, V: float64(i)})
		}
		series = append(series, ts)
	}
	code, body := c.Distributor(0).Push(t, tenant, series)
	require.Equal(t, http.StatusNoContent, code, body)

	count := func() string {
		code, body := q.Query(t, tenant, clustertest.PromAPI+"/query", url.Values{
			"query": {`count_over_time(m[1m])`}, "time": {clustertest.FormatAPITime(end)}})
		require.Equal(t, http.StatusOK, code, string(body))
		r := clustertest.DecodeAPI(t, body)
		return string(r.Data)
	}
	want := func(counts ...int) string {
		out := `{"resultType":"vector","result":[`
		for s, n := range counts {
			if n == 0 {
				continue
			}
			if out[len(out)-1] == '}' {
				out += ","
			}
			out += fmt.Sprintf(`{"metric":{"s":"%d"},"value":[%s,"%d"]}`, s, clustertest.FormatAPITime(end), n)
		}
		return out + "]}"
	}
	require.JSONEq(t, want(30, 30, 30, 30), count())

	del := func(params url.Values) (int, string) {
		code, body := q.QueryPost(t, tenant, clustertest.PromAPI+"/admin/tsdb/delete_series", params)
		return code, string(body)
	}
	// s=0 loses 10 samples, s=1 all of them.
	code, body = del(url.Values{"match[]": {`m{s="0"}`}, "start": {clustertest.FormatAPITime(end - 9000)}, "end": {clustertest.FormatAPITime(end)}})
	require.Equal(t, http.StatusNoContent, code, body)
	code, body = del(url.Values{"match[]": {`m{s=~"1|9"}`}})
	require.Equal(t, http.StatusNoContent, code, body)
	require.JSONEq(t, want(20, 0, 30, 30), count())

	code, raw := q.Query(t, tenant, clustertest.PromAPI+"/status/tsdb", nil)
	require.Equal(t, http.StatusOK, code, string(raw))
	require.Contains(t, string(raw), `"headStats":{"numSeries":4,"numLabelPairs":5,"chunkCount":4,`, "deleted series count until they leave the head, as in Prometheus")
	require.Contains(t, string(raw), `"seriesCountByMetricName":[{"name":"m","value":4}]`)

	victim := c.Ingester(1)
	victim.Kill(t)
	deleteS2 := url.Values{"match[]": {`m{s="2"}`}}
	code, body = del(deleteS2)
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	require.Regexp(t, `"error":"err-argus-admin-partial-failure: tenant \\"team-admin\\": `, body)
	victim.Restart(t)
	c.WaitRing(t, 3)
	clustertest.Eventually(t, func() string {
		if code, body := del(deleteS2); code != http.StatusNoContent {
			return fmt.Sprintf("retry answered %d: %s", code, body)
		}
		return ""
	}, 30*time.Second)
	require.JSONEq(t, want(20, 0, 0, 30), count())
}
