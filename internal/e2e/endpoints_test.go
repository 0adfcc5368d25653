package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// walkedEndpoint is one entry of the / page's endpoint list.
type walkedEndpoint struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Desc   string `json:"description"`
	Tenant bool   `json:"tenant"`
}

// TestEndpointWalk asks every endpoint that the / page of each role lists
// and wants the answer docs/api.md documents for it: 200 for every page and
// read, 204 for an empty push, 200 for an empty OTLP push. Each listed path
// must be in docs/api.md, the HTML page must link every GET page a browser
// can open (/ring, /memberlist and /config among them), and a path nobody
// serves answers err-argus-not-found with the hint of its role. The roles
// are an all-in-one (with the admin API) and a cluster of one ingester, one
// distributor and one querier in their own processes, a scraper
// (-target=scraper with a one-target static configuration) and a ruler
// (-target=ruler), both writing to the all-in-one.
func TestEndpointWalk(t *testing.T) {
	skipIfShort(t)
	apiDoc, err := os.ReadFile(filepath.Join("..", "..", "docs", "api.md"))
	require.NoError(t, err)
	all := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-api.enable-admin-api=true"}})
	c := clustertest.StartCluster(t, clustertest.Topology{Ingesters: 1, Distributors: 1, Queriers: 1, RF: 1})
	procs := map[string]*clustertest.Process{
		"all": all, "ingester": c.Ingester(0).Process, "distributor": c.Distributor(0).Process, "querier": c.Querier(0).Process,
		"scraper": startScraperForWalk(t, all), "ruler": startRulerForWalk(t, all),
	}
	for role, p := range procs {
		t.Run(role, func(t *testing.T) {
			eps := listEndpoints(t, p)
			for _, e := range eps {
				if strings.HasSuffix(e.Path, "/config/v1/rules") {
					// docs/api.md: a tenant without groups is a 404; with one,
					// its groups as YAML.
					postWalkRuleGroup(t, p)
				}
			}
			for _, e := range eps {
				path, _, _ := strings.Cut(e.Path, "?")
				require.True(t, documented(string(apiDoc), path), "%s: %s is listed on / but not in docs/api.md", role, path)
				code, body := walk(t, p, e)
				want := http.StatusOK
				if e.Method == http.MethodPost && !strings.Contains(path, "otlp") && !strings.HasSuffix(path, "/-/reload") {
					want = http.StatusNoContent
				}
				require.Equal(t, want, code, "%s: %s %s: %s", role, e.Method, e.Path, body)
			}
			requireIndexLinks(t, p, eps)
			code, body := p.Query(t, "walk", "/no/such/page", nil)
			require.Equal(t, http.StatusNotFound, code)
			require.True(t, strings.HasPrefix(string(body), "err-argus-not-found: "), "%s", body)
		})
	}
	// One version everywhere: the / page, status/buildinfo, argus_build_info.
	version := pageVersion(t, all)
	code, raw := all.Query(t, "walk", clustertest.PromAPI+"/status/buildinfo", nil)
	require.Equal(t, http.StatusOK, code)
	var info struct {
		Data struct{ Version string } `json:"data"`
	}
	require.NoError(t, json.Unmarshal(raw, &info))
	require.Equal(t, "argus-"+version, info.Data.Version)
	require.Equal(t, 1.0, all.Metric(t, "argus_build_info", map[string]string{"version": version}))

	// status/flags lists every flag of the process, of every role, with
	// its value in force, as Prometheus lists all of its own.
	for _, p := range []*clustertest.Process{all, procs["querier"]} {
		code, raw = p.Query(t, "walk", clustertest.PromAPI+"/status/flags", nil)
		require.Equal(t, http.StatusOK, code, "%s", raw)
		var flags struct {
			Data map[string]string `json:"data"`
		}
		require.NoError(t, json.Unmarshal(raw, &flags))
		for _, name := range []string{"target", "server.http-listen-port", "ingester.ring.replication-factor",
			"distributor.ingestion-rate-limit", "querier.max-concurrent", "scraper.config-file", "ruler.evaluation-interval", "storage.path"} {
			require.Contains(t, flags.Data, name, "status/flags lists every role's flags")
		}
	}
	code, raw = all.Query(t, "walk", clustertest.PromAPI+"/status/flags", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(raw), `"api.enable-admin-api":"true"`)
	require.Contains(t, string(raw), `"target":"all"`)

	// Near misses get a hint: a push to a process without a distributor, a
	// query without the /prometheus prefix, a push under it.
	code, body := procs["ingester"].Push(t, "walk", nil)
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, body, "pushes are served by a distributor, and this process runs -target=ingester")
	code, raw = all.Query(t, "walk", "/api/v1/labels", nil)
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, string(raw), "use /prometheus/api/v1/labels")
	code, raw = procs["distributor"].Query(t, "walk", clustertest.PromAPI+"/query", nil)
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, string(raw), "the Prometheus API is served by a querier, and this process runs -target=distributor")
}

// listEndpoints reads the endpoint list of p's / page.
func listEndpoints(t *testing.T, p *clustertest.Process) []walkedEndpoint {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.URL()+"/", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/json")
	code, body := p.Do(t, req)
	require.Equal(t, http.StatusOK, code, "%s", body)
	var page struct {
		Version   string           `json:"version"`
		Endpoints []walkedEndpoint `json:"endpoints"`
	}
	require.NoError(t, json.Unmarshal(body, &page), "%s", body)
	require.NotEmpty(t, page.Version)
	require.NotEmpty(t, page.Endpoints)
	return page.Endpoints
}

// pageVersion reads the version of p's / page.
func pageVersion(t *testing.T, p *clustertest.Process) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.URL()+"/", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/json")
	_, body := p.Do(t, req)
	var page struct{ Version string }
	require.NoError(t, json.Unmarshal(body, &page))
	require.NotEmpty(t, page.Version)
	return page.Version
}

// documented reports whether docs/api.md names path, in full or, for the
// Prometheus API, by its name below /prometheus/api/v1.
func documented(doc, path string) bool {
	if strings.Contains(doc, "`"+path) || strings.Contains(doc, " "+path) {
		return true
	}
	rest, ok := strings.CutPrefix(path, clustertest.PromAPI+"/")
	return ok && strings.Contains(doc, "`"+rest)
}

// walk sends the request that the endpoint's documentation describes:
// a GET (with a tenant where one is needed), an empty push, a deletion of
// a series that does not exist.
func walk(t *testing.T, p *clustertest.Process, e walkedEndpoint) (int, string) {
	t.Helper()
	var body []byte
	url := p.URL() + e.Path
	header := http.Header{}
	switch {
	case e.Method == http.MethodGet:
	case strings.HasSuffix(e.Path, "/api/v1/push"):
		body = snappy.Encode(nil, clustertest.MarshalWriteRequest(t, nil))
		header.Set("Content-Encoding", "snappy")
		header.Set("Content-Type", "application/x-protobuf")
	case strings.Contains(e.Path, "otlp"):
		header.Set("Content-Type", "application/x-protobuf")
	case strings.HasSuffix(e.Path, "/delete_series"):
		url += "?match[]=walk_no_such_metric"
	}
	req, err := http.NewRequest(e.Method, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header = header
	if e.Tenant {
		req.Header.Set(clustertest.TenantHeader, "walk")
	}
	code, b := p.Do(t, req)
	return code, string(b)
}

// requireIndexLinks checks that the HTML / page lists every endpoint and
// links the ones a browser can open.
func requireIndexLinks(t *testing.T, p *clustertest.Process, eps []walkedEndpoint) {
	t.Helper()
	code, body := p.Query(t, "", "/", nil)
	require.Equal(t, http.StatusOK, code)
	page := string(body)
	for _, e := range eps {
		require.Contains(t, page, e.Path)
		if e.Method == http.MethodGet && !e.Tenant {
			require.Contains(t, page, `href="`+strings.ReplaceAll(e.Path, "&", "&amp;")+`"`)
		}
	}
	for _, must := range []string{"/ring", "/memberlist", "/config", "/metrics", "/ready"} {
		require.Contains(t, page, `href="`+must+`"`)
	}
}

// startScraperForWalk starts a -target=scraper process with a static
// configuration of one (unreachable) target, writing to all.
func startScraperForWalk(t *testing.T, all *clustertest.Process) *clustertest.Process {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "prometheus.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("global:\n  scrape_interval: 1m\nscrape_configs:\n  - job_name: walk\n    static_configs:\n      - targets: [127.0.0.1:1]\n"), 0o644))
	ml := clustertest.FreeMemberlistPorts(t, 1)
	return clustertest.StartArgus(t, clustertest.Options{Flags: []string{
		"-target=scraper", "-scraper.config-file=" + cfg, "-scraper.remote-write-url=" + all.PushURL(),
		"-memberlist.bind-addr=127.0.0.1", "-memberlist.bind-port=" + strconv.Itoa(ml[0]),
	}})
}

// startRulerForWalk starts a -target=ruler process writing to all.
func startRulerForWalk(t *testing.T, all *clustertest.Process) *clustertest.Process {
	t.Helper()
	ml := clustertest.FreeMemberlistPorts(t, 1)
	return clustertest.StartArgus(t, clustertest.Options{Flags: []string{
		"-target=ruler", "-ruler.remote-write-url=" + all.PushURL(),
		"-memberlist.bind-addr=127.0.0.1", "-memberlist.bind-port=" + strconv.Itoa(ml[0]),
	}})
}

// postWalkRuleGroup stores one rule group for the walk's tenant through
// the ruler's configuration API (202, docs/api.md).
func postWalkRuleGroup(t *testing.T, p *clustertest.Process) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.URL()+"/prometheus/config/v1/rules/walk",
		strings.NewReader("name: walk\nrules:\n  - record: walk:up\n    expr: vector(1)\n"))
	require.NoError(t, err)
	req.Header.Set(clustertest.TenantHeader, "walk")
	code, body := p.Do(t, req)
	require.Equal(t, http.StatusAccepted, code, "%s", body)
}
