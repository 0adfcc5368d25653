package clustere2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestTenantIsolation pushes series with the same names and labels but
// other values for two tenants, plus a metric only one of them has, through
// one distributor, and asks both queriers as each tenant (and as a third
// tenant with no data): every answer holds exactly that tenant's data.
//
//	team-a, team-b ─▶ dist-0 ─▶ ing-0..2 ◀─ querier-0, querier-1 (each asked as team-a, team-b, team-c)
func TestTenantIsolation(t *testing.T) {
	skipIfShort(t)
	c := clustertest.StartCluster(t, clustertest.Topology{Ingesters: 3, Distributors: 1, Queriers: 2, RF: 3})
	end := time.Now().Add(-time.Second).Truncate(time.Second).UnixMilli()
	const samples = 30
	data := map[string][]clustertest.TimeSeries{}
	for ti, tenant := range []string{"team-a", "team-b"} {
		var ss []clustertest.TimeSeries
		for s := range 20 {
			ts := clustertest.TimeSeries{Labels: clustertest.Labels("__name__", "shared_metric", "series", fmt.Sprintf("s%02d", s))}
			for i := range samples {
				ts.Samples = append(ts.Samples, clustertest.Sample{T: end - int64(samples-1-i)*1000, V: float64(ti*1_000_000 + s*1000 + i)})
			}
			ss = append(ss, ts)
		}
		if tenant == "team-b" {
			ss = append(ss, clustertest.TimeSeries{
				Labels:  clustertest.Labels("__name__", "only_b", "secret", "yes"),
				Samples: []clustertest.Sample{{T: end, V: 42}},
			})
		}
		code, body := c.Distributor(0).Push(t, tenant, ss)
		require.Equal(t, http.StatusNoContent, code, "push for %s: %s", tenant, body)
		data[tenant] = ss
	}

	window := fmt.Sprintf("%dms", samples*1000)
	at := clustertest.FormatAPITime(end)
	rng := url.Values{"start": {clustertest.FormatAPITime(end - samples*1000)}, "end": {at}}
	for _, q := range []*clustertest.Member{c.Querier(0), c.Querier(1)} {
		for _, tenant := range []string{"team-a", "team-b", "team-c"} {
			t.Run(q.ID()+"/"+tenant, func(t *testing.T) {
				want := toSeries(data[tenant])
				code, body := q.Query(t, tenant, clustertest.PromAPI+"/query", url.Values{"query": {`{__name__=~".+"}[` + window + `]`}, "time": {at}})
				got := clustertest.MatrixData(t, code, body)
				clustertest.SortSeries(got)
				require.Empty(t, clustertest.DiffSamples(want, got), "raw samples")

				var wantNames []string
				wantSeries := []map[string]string{}
				for _, s := range want {
					wantSeries = append(wantSeries, s.Metric)
					if n := s.Metric["__name__"]; len(wantNames) == 0 || wantNames[len(wantNames)-1] != n {
						wantNames = append(wantNames, n)
					}
				}
				wantLabels := []string{"__name__", "series"}
				if tenant == "team-b" {
					wantLabels = append(wantLabels, "secret")
				}
				if len(want) == 0 {
					wantLabels = []string{}
					wantNames = []string{}
				}
				var gotSeries []map[string]string
				apiData(t, q, tenant, "/series", withParams(rng, "match[]", `{__name__=~".+"}`), &gotSeries)
				require.Empty(t, cmp.Diff(wantSeries, sortedMaps(gotSeries)), "/series")
				var gotLabels, gotNames []string
				apiData(t, q, tenant, "/labels", rng, &gotLabels)
				require.ElementsMatch(t, wantLabels, gotLabels, "/labels")
				apiData(t, q, tenant, "/label/__name__/values", rng, &gotNames)
				require.Equal(t, wantNames, gotNames, "/label/__name__/values")
				var secret []string
				apiData(t, q, tenant, "/label/secret/values", rng, &secret)
				if tenant == "team-b" {
					require.Equal(t, []string{"yes"}, secret)
				} else {
					require.Empty(t, secret, "label values of another tenant")
				}
			})
		}
	}
}

// toSeries is what a raw query returns for pushed series, sorted.
func toSeries(ts []clustertest.TimeSeries) []clustertest.Series {
	out := []clustertest.Series{}
	for _, s := range ts {
		m := map[string]string{}
		for _, l := range s.Labels {
			m[l.Name] = l.Value
		}
		out = append(out, clustertest.Series{Metric: m, Samples: s.Samples})
	}
	clustertest.SortSeries(out)
	return out
}

func asSeries(ms []map[string]string) []clustertest.Series {
	out := make([]clustertest.Series, len(ms))
	for i, m := range ms {
		out[i] = clustertest.Series{Metric: m}
	}
	return out
}

// sortedMaps sorts label sets the way SortSeries sorts series.
func sortedMaps(ms []map[string]string) []map[string]string {
	ss := asSeries(ms)
	clustertest.SortSeries(ss)
	out := []map[string]string{}
	for _, s := range ss {
		out = append(out, s.Metric)
	}
	return out
}

func withParams(base url.Values, kv ...string) url.Values {
	v := url.Values{}
	for k, vs := range base {
		v[k] = append([]string(nil), vs...)
	}
	for i := 0; i < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

// apiData GETs PromAPI+path as tenant, requires success and decodes the
// data into out.
func apiData(t testing.TB, q *clustertest.Member, tenant, path string, params url.Values, out any) {
	t.Helper()
	code, body := q.Query(t, tenant, clustertest.PromAPI+path, params)
	require.Equal(t, http.StatusOK, code, "GET %s as %s: %s", path, tenant, body)
	r := clustertest.DecodeAPI(t, body)
	require.Equal(t, "success", r.Status, "GET %s as %s: %s", path, tenant, body)
	require.NoError(t, json.Unmarshal(r.Data, out), "GET %s as %s: %s", path, tenant, body)
}
