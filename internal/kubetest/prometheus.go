package kubetest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// StartPrometheus runs the real Prometheus server (PROMETHEUS_BIN) on
// config, a whole prometheus.yml, and returns its URL. It is killed at the
// end of the test. Unlike clustertest.StartPrometheus it takes the
// configuration verbatim: the Kubernetes tests compare service discovery,
// so the scrape_configs are the test's own.
func StartPrometheus(t testing.TB, config string) string {
	t.Helper()
	bin := clustertest.PrometheusBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(config), 0o644))
	port := clustertest.FreePorts(t, 1)[0]
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	exited := startProcess(t, dir, "prometheus", bin, []string{
		"--config.file=" + cfgPath,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:" + strconv.Itoa(port),
		"--web.enable-lifecycle",
		"--log.level=warn",
	})
	waitReady(t, "prometheus", url+"/-/ready", nil, exited)
	return url
}

// Target is one active target of /api/v1/targets.
type Target struct {
	ScrapePool string            `json:"scrapePool"`
	ScrapeURL  string            `json:"scrapeUrl"`
	Labels     map[string]string `json:"labels"`
	Health     string            `json:"health"`
}

// Key is a target's identity for comparisons: its scrape pool and sorted
// labels.
func (t Target) Key() string {
	names := make([]string, 0, len(t.Labels))
	for n := range t.Labels {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(t.ScrapePool + " {")
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", n, t.Labels[n])
	}
	b.WriteString("}")
	return b.String()
}

// ActiveTargets returns the active targets that url/api/v1/targets lists
// (url is a Prometheus server, or Argus with its /prometheus prefix, which
// lists the targets of the tenant named by X-Scope-OrgID: tenant, if not
// empty), sorted by Key, and the error of the request, if any.
func ActiveTargets(url, tenant string) ([]Target, error) {
	req, err := http.NewRequest(http.MethodGet, url+"/api/v1/targets?state=active", nil)
	if err != nil {
		return nil, err
	}
	if tenant != "" {
		req.Header.Set(clustertest.TenantHeader, tenant)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("targets: %s: %s", resp.Status, body)
	}
	var r struct {
		Data struct {
			ActiveTargets []Target `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("targets: %w", err)
	}
	ts := r.Data.ActiveTargets
	sort.Slice(ts, func(i, j int) bool { return ts[i].Key() < ts[j].Key() })
	return ts, nil
}

// Keys returns the keys of targets, one per line, for readable diffs.
func Keys(targets []Target) string {
	var b strings.Builder
	for _, t := range targets {
		b.WriteString(t.Key() + "\n")
	}
	return b.String()
}
