package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/querier"
)

// writeTextError answers err as a plain-text body that starts with its ID,
// as every answer of the process outside the Prometheus API does.
func writeTextError(w http.ResponseWriter, err *apierror.Error) {
	h := w.Header()
	h.Del("Content-Encoding")
	h.Del("Content-Length")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(err.ID.Status())
	fmt.Fprintln(w, err.Error())
}

// writePromError answers err in the Prometheus API's JSON error envelope,
// which Prometheus clients (Grafana) read.
func writePromError(w http.ResponseWriter, err *apierror.Error, errorType string) {
	h := w.Header()
	h.Del("Content-Encoding")
	h.Del("Content-Length")
	h.Set("Content-Type", "application/json")
	w.WriteHeader(err.ID.Status())
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": errorType, "error": err.Error()})
}

// promAPIPrefix is where the Prometheus API is served.
const promAPIPrefix = querier.PathPrefix + "/api/v1"

// pushPaths are the write endpoints of a distributor.
var pushPaths = []string{"/api/v1/push", "/api/v1/write", "/api/v1/receive", "/otlp/v1/metrics", "/api/v1/otlp/v1/metrics"}

// promReadEndpoints are the first path elements of the Prometheus API below
// /api/v1, for the hint when a client forgets the /prometheus prefix.
var promReadEndpoints = []string{
	"query", "query_range", "query_exemplars", "series", "labels", "label", "metadata", "status",
	"format_query", "parse_query", "rules", "alerts", "targets", "admin", "cardinality", "read", "features",
}

// notFoundHandler answers every path no endpoint of the process serves: a
// 404 with an ID and, where the path is a near miss, what was meant.
func (a *app) notFoundHandler(w http.ResponseWriter, r *http.Request) {
	writeTextError(w, apierror.Errorf(apierror.NotFound, "%s", a.notFoundHint(r.URL.Path)))
}

// notFoundHint says why nothing serves path here.
func (a *app) notFoundHint(path string) string {
	roles := a.cfg.Roles()
	runs := fmt.Sprintf("this process runs -target=%s", a.cfg.Target)
	switch {
	case isPushPath(path) && !roles[roleDistributor]:
		return fmt.Sprintf("no endpoint at %s: pushes are served by a distributor, and %s", path, runs)
	case strings.HasPrefix(path, querier.PathPrefix+"/") && !roles[roleQuerier]:
		return fmt.Sprintf("no endpoint at %s: the Prometheus API is served by a querier, and %s", path, runs)
	case strings.HasPrefix(path, "/api/v1/") && isPromReadPath(strings.TrimPrefix(path, "/api/v1/")):
		return fmt.Sprintf("no endpoint at %s: the Prometheus API is under %s, use %s%s (Grafana's data source URL ends in %s)",
			path, querier.PathPrefix, querier.PathPrefix, path, querier.PathPrefix)
	case path == "/ingester/tenants" && !roles[roleIngester]:
		return fmt.Sprintf("no endpoint at %s: it is an ingester's page, and %s", path, runs)
	case strings.HasPrefix(path, "/debug/pprof") && !a.cfg.Server.RegisterInstrumentation:
		return fmt.Sprintf("no endpoint at %s: the profiles are served with -server.register-instrumentation=true", path)
	}
	return fmt.Sprintf("no endpoint at %s; GET / lists the endpoints of this process", path)
}

func isPushPath(path string) bool {
	for _, p := range pushPaths {
		if path == p {
			return true
		}
	}
	return false
}

func isPromReadPath(rest string) bool {
	first, _, _ := strings.Cut(rest, "/")
	for _, e := range promReadEndpoints {
		if first == e {
			return true
		}
	}
	return false
}

// promNotSupported are the Prometheus API endpoints (below /prometheus/api/v1)
// that Argus does not serve yet, and why. Prometheus's API would answer them
// with empty or made-up data, which tools take at their word. A role that
// serves one of them mounts it on the mux under its full path, which wins
// over this list (the scraper's targets).
var promNotSupported = map[string]string{
	"/scrape_pools":          "scrape pools are the scraper's: see /scraper/targets on a process running the scraper",
	"/scrape_pools/config":   "scrape pools are the scraper's: see /scraper/targets on a process running the scraper",
	"/targets":               "this process runs no scraper (-target=scraper, or -scraper.config-file with -target=all); the scraper serves its targets here",
	"/targets/metadata":      "this process runs no scraper (-target=scraper, or -scraper.config-file with -target=all); the scraper serves its targets' metadata here",
	"/targets/relabel_steps": "the scraper does not serve relabelling steps",
	"/status/runtimeinfo":    "the process's runtime is on its /metrics (go_*, process_*) and its configuration at /config",
	"/status/tsdb/blocks":    "Argus stores no Prometheus TSDB blocks; status/tsdb shows the tenant's head",
	"/status/walreplay":      "the WAL replay of an ingester shows on its /ready and /ingester/tenants",
	"/notifications":         "Argus has no server notifications",
	"/notifications/live":    "Argus has no server notifications",
	"/admin/tsdb/snapshot":   "Argus stores no Prometheus TSDB to snapshot",
	"/search/metric_names":   "the search API is not served; use labels and label/__name__/values",
	"/search/label_names":    "the search API is not served; use labels",
	"/search/label_values":   "the search API is not served; use label/<name>/values",
}

// promRulerPaths are the Prometheus API endpoints the ruler role serves
// (rules and alerts through ruler.Lister, which a querier in a gossip
// cluster serves too; alertmanagers through the querier's API), not
// supported on a process without either.
var promRulerPaths = map[string]string{
	"/rules":         "this process runs no ruler (-target=ruler, or -target=all); the ruler serves its rule groups here",
	"/alerts":        "this process runs no ruler (-target=ruler, or -target=all); the ruler serves its alerts here",
	"/alertmanagers": "this process runs no ruler (-target=ruler, or -target=all); the ruler serves the Alertmanagers it sends to here",
}

// promAPI wraps the querier's Prometheus API: it serves status/config from
// the process's configuration, answers the endpoints Argus does not serve
// yet with err-argus-not-supported, and gives the router's bare 404 and 405
// answers (and Prometheus's receiver errors, which name Prometheus's flags)
// an ID and a hint.
func (a *app) promAPI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, isAPI := strings.CutPrefix(r.URL.Path, promAPIPrefix)
		if isAPI && rest == "/status/config" {
			a.servePromConfig(w)
			return
		}
		why, ok := promNotSupported[rest]
		if !ok && (a.lister == nil || (a.ruler == nil && rest == "/alertmanagers")) {
			why, ok = promRulerPaths[rest]
		}
		if isAPI && ok {
			writePromError(w, apierror.Errorf(apierror.NotSupported, "%s is not served: %s", r.URL.Path, why), "not_found")
			return
		}
		c := &plainErrorCatcher{ResponseWriter: w}
		next.ServeHTTP(c, r)
		caught := c.finish()
		if caught == 0 {
			return
		}
		var err *apierror.Error
		switch {
		case isPushPath(strings.TrimPrefix(r.URL.Path, querier.PathPrefix)):
			err = apierror.Errorf(apierror.NotFound, "no endpoint at %s: pushes go to %s, without the %s prefix of the query API",
				r.URL.Path, strings.TrimPrefix(r.URL.Path, querier.PathPrefix), querier.PathPrefix)
		case caught == http.StatusMethodNotAllowed:
			err = apierror.Errorf(apierror.MethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path)
		default:
			err = apierror.Errorf(apierror.NotFound, "no endpoint at %s; docs/api.md lists the Prometheus API endpoints Argus serves", r.URL.Path)
		}
		if isAPI {
			writePromError(w, err, "not_found")
		} else {
			writeTextError(w, err)
		}
	})
}

// servePromConfig answers status/config with the process's configuration
// (as GET /config shows it) in the field Prometheus clients read.
func (a *app) servePromConfig(w http.ResponseWriter) {
	text, err := configYAML(&a.cfg, "")
	if err != nil {
		writePromError(w, apierror.Errorf(apierror.Internal, "%w", err), "internal")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]string{"yaml": string(text)}})
}

// plainErrorCatcher swallows a plain-text 404 or 405 answer without an
// error ID (the routers', or Prometheus's disabled receivers'), for the
// wrapper to answer with an ID. Answers that carry an ID, and JSON errors,
// pass through.
type plainErrorCatcher struct {
	http.ResponseWriter
	pending int // a 404 or 405 whose body decides, 0 if none
	caught  int // the status swallowed, 0 if none
}

func (c *plainErrorCatcher) WriteHeader(code int) {
	if (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) &&
		strings.HasPrefix(c.Header().Get("Content-Type"), "text/plain") {
		c.pending = code
		return
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *plainErrorCatcher) Write(b []byte) (int, error) {
	if c.pending != 0 {
		code := c.pending
		c.pending = 0
		if !strings.HasPrefix(string(b), apierror.Prefix) {
			c.caught = code
		} else {
			c.ResponseWriter.WriteHeader(code)
		}
	}
	if c.caught != 0 {
		return len(b), nil
	}
	return c.ResponseWriter.Write(b)
}

// finish reports the status swallowed, if any. A pending status never
// written to (an empty body) counts as swallowed.
func (c *plainErrorCatcher) finish() int {
	if c.pending != 0 {
		c.caught, c.pending = c.pending, 0
	}
	return c.caught
}

// Unwrap lets http.ResponseController reach the real writer (flushes of
// streamed answers).
func (c *plainErrorCatcher) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// Flush passes a flush through, for handlers that test for http.Flusher.
func (c *plainErrorCatcher) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok && c.caught == 0 && c.pending == 0 {
		f.Flush()
	}
}

// withErrorIDs wraps the process's mux: the mux's own bare 404 and 405
// answers (a method a pattern does not take, such as POST /config) get an
// ID, as every other answer has.
func (a *app) withErrorIDs(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &plainErrorCatcher{ResponseWriter: w}
		mux.ServeHTTP(c, r)
		switch c.finish() {
		case 0:
		case http.StatusMethodNotAllowed:
			writeTextError(w, apierror.Errorf(apierror.MethodNotAllowed, "%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, w.Header().Get("Allow")))
		default:
			a.notFoundHandler(w, r)
		}
	})
}
