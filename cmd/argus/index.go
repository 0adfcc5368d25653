package main

import (
	"encoding/json"
	"html/template"
	"net/http"
	"strings"

	"github.com/argus-tsdb/argus/ingester"
	"github.com/argus-tsdb/argus/querier"
	"github.com/argus-tsdb/argus/scraper"
)

// endpoint is one HTTP endpoint the process serves, as the / page lists it.
type endpoint struct {
	Method string `json:"method"` // GET, or POST for the write and admin endpoints
	Path   string `json:"path"`
	Desc   string `json:"description"`
	// Tenant is set when the request needs X-Scope-OrgID (or a token).
	Tenant bool `json:"tenant"`
}

// Link says whether the / page links the endpoint: a GET that a browser
// can open (no tenant header needed).
func (e endpoint) Link() bool { return e.Method == http.MethodGet && !e.Tenant }

// endpoints lists what this process serves, for its roles. The / page shows
// it, and TestEndpointWalk asks each one.
func (a *app) endpoints() []endpoint {
	roles := a.cfg.Roles()
	get := func(path, desc string) endpoint { return endpoint{Method: http.MethodGet, Path: path, Desc: desc} }
	tenantGet := func(path, desc string) endpoint {
		return endpoint{Method: http.MethodGet, Path: path, Desc: desc, Tenant: true}
	}
	post := func(path, desc string) endpoint {
		return endpoint{Method: http.MethodPost, Path: path, Desc: desc, Tenant: true}
	}
	var out []endpoint
	if roles[roleDistributor] {
		out = append(out,
			post("/api/v1/push", "Prometheus remote write 1.0 and 2.0 (also /api/v1/write, /api/v1/receive)"),
			post("/otlp/v1/metrics", "OTLP metrics over HTTP (also /api/v1/otlp/v1/metrics)"),
			tenantGet("/api/v1/user_limits", "the tenant's limits in force and its usage"),
			get("/distributor/ha_tracker", "the HA pair elections this distributor reads"),
		)
	}
	if roles[roleQuerier] {
		api := querier.PathPrefix + "/api/v1"
		out = append(out,
			tenantGet(api+"/query?query=up", "Prometheus HTTP API (query, query_range, series, labels, metadata, ...); Grafana's data source URL is /prometheus"),
			tenantGet(api+"/status/tsdb", "the tenant's head statistics"),
			tenantGet(api+"/cardinality/label_names", "the tenant's label cardinality (Mimir's API)"),
			tenantGet(api+"/status/buildinfo", "the version, as Prometheus clients read it"),
			get(api+"/status/config", "the configuration in force, as Prometheus clients read it"),
		)
		if a.cfg.Admin.Enabled {
			out = append(out, post(api+"/admin/tsdb/delete_series", "delete series (-api.enable-admin-api)"))
		}
	}
	if a.ruler != nil {
		out = append(out, tenantGet(querier.PathPrefix+"/config/v1/rules", "the tenant's rule groups as YAML (Mimir's configuration API: GET, POST and DELETE per namespace and group)"))
		if roles[roleQuerier] {
			api := querier.PathPrefix + "/api/v1"
			out = append(out,
				tenantGet(api+"/rules", "the tenant's rule groups this ruler evaluates, as Prometheus answers them"),
				tenantGet(api+"/alerts", "the tenant's active alerts of this ruler"),
			)
		}
	}
	if a.ingester != nil {
		out = append(out, get("/ingester/tenants", "the ingester's open tenants, their series, failed ones"))
	}
	if a.scraper != nil {
		out = append(out,
			get(scraper.StatusPath, "the scrapers and the targets each owns"),
			tenantGet(scraper.TargetsPath, "the tenant's scrape targets, as Prometheus answers them"),
			endpoint{Method: http.MethodPost, Path: scraper.ReloadPath, Desc: "reload -scraper.config-file (SIGHUP does too)"},
		)
	}
	out = append(out,
		get("/ring", "the ingester ring (JSON with Accept: application/json)"),
		get("/memberlist", "the gossip members"),
		get("/config", "the configuration in force, as a -config.file"),
		get("/config?mode=diff", "the configuration fields that differ from the defaults"),
		get("/ready", "readiness (and the ingester's failed tenants)"),
		get("/metrics", "Argus's own metrics"),
	)
	if a.cfg.Server.RegisterInstrumentation {
		out = append(out, get("/debug/pprof/", "Go's runtime profiles"))
	}
	return out
}

var indexPage = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Argus</title>
<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left}code{white-space:nowrap}</style></head>
<body><h1>Argus {{.Version}}</h1>
<p>Roles: {{.Target}} (-target). gRPC at {{.GRPC}}.</p>
<h2>Endpoints</h2>
<table><thead><tr><th>Method</th><th>Path</th><th>What</th></tr></thead><tbody>
{{range .Endpoints}}<tr><td>{{.Method}}</td><td><code>{{if .Link}}<a href="{{.Path}}">{{.Path}}</a>{{else}}{{.Path}}{{end}}</code></td><td>{{.Desc}}{{if .Tenant}} (needs X-Scope-OrgID){{end}}</td></tr>
{{end}}</tbody></table>
{{if .HasIngester}}<h2>Tenants</h2>
<p>The tenants open on this ingester and their in-memory series (this ingester's replicas; <a href="/ingester/tenants">as text</a>). A tenant's limits and usage across the cluster: <code>GET /api/v1/user_limits</code> with its X-Scope-OrgID.</p>
<table><thead><tr><th>Tenant</th><th>In-memory series</th><th>State</th></tr></thead><tbody>
{{range .Tenants}}<tr><td>{{.ID}}</td><td>{{.MemorySeries}}</td><td>{{if .Failed}}FAILED: {{.Failed}}{{else}}ok{{end}}</td></tr>
{{else}}<tr><td colspan="3">none yet</td></tr>
{{end}}</tbody></table>{{end}}
</body></html>
`))

// serveIndex answers / with the status page (HTML, or the endpoint list as
// JSON with Accept: application/json), and every path nothing else serves
// with err-argus-not-found.
func (a *app) serveIndex(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		a.notFoundHandler(w, r)
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"version": Version, "target": a.cfg.Target, "endpoints": a.endpoints()})
		return
	}
	var tenants []ingester.TenantStatus
	if a.ingester != nil {
		tenants = a.ingester.TenantStatuses()
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = indexPage.Execute(w, map[string]any{
		"Version": Version, "Target": a.cfg.Target, "GRPC": a.grpc.boundAddr(),
		"Endpoints": a.endpoints(), "HasIngester": a.ingester != nil, "Tenants": tenants,
	})
}
