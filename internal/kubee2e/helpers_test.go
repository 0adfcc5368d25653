package kubee2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
	"github.com/argus-tsdb/argus/internal/kubetest"
)

func TestMain(m *testing.M) { os.Exit(clustertest.Main(m)) }

// writeFile writes content to a new file in a temporary directory.
func writeFile(t *testing.T, name, content string) string {
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

// sameTargets waits until the real Prometheus has want active targets and
// Argus's active targets of the tenants together equal them (same scrape
// pools, same labels), and returns them.
func sameTargets(t *testing.T, argus *clustertest.Process, tenants []string, promURL string, want int) []kubetest.Target {
	t.Helper()
	var got []kubetest.Target
	clustertest.Eventually(t, func() string {
		p, err := kubetest.ActiveTargets(promURL, "")
		if err != nil {
			return err.Error()
		}
		var a []kubetest.Target
		for _, tenant := range tenants {
			ts, err := kubetest.ActiveTargets(argus.URL()+"/prometheus", tenant)
			if err != nil {
				return err.Error()
			}
			a = append(a, ts...)
		}
		sort.Slice(a, func(i, j int) bool { return a[i].Key() < a[j].Key() })
		if len(p) != want {
			return fmt.Sprintf("prometheus has %d targets, want %d:\n%s", len(p), want, kubetest.Keys(p))
		}
		if pk, ak := kubetest.Keys(p), kubetest.Keys(a); pk != ak {
			return "prometheus:\n" + pk + "argus:\n" + ak
		}
		got = a
		return ""
	}, 2*time.Minute)
	return got
}

// instantVector runs query on Argus for tenant and returns each series'
// labels as a string, sorted.
func instantVector(t *testing.T, argus *clustertest.Process, tenant, query string) []string {
	t.Helper()
	status, body := argus.Query(t, tenant, "/prometheus/api/v1/query", url.Values{"query": {query}})
	require.Equal(t, http.StatusOK, status, string(body))
	var r struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &r))
	var out []string
	for _, s := range r.Data.Result {
		out = append(out, kubetest.Target{Labels: s.Metric}.Key())
	}
	sort.Strings(out)
	return out
}

// promVector runs query on the real Prometheus and returns each series'
// labels as a string, sorted.
func promVector(t *testing.T, promURL, query string) []string {
	t.Helper()
	resp, err := http.Get(promURL + "/api/v1/query?" + url.Values{"query": {query}}.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var r struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	var out []string
	for _, s := range r.Data.Result {
		out = append(out, kubetest.Target{Labels: s.Metric}.Key())
	}
	sort.Strings(out)
	return out
}
