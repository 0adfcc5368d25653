package ruler

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/prometheus/prometheus/model/rulefmt"
	"go.yaml.in/yaml/v3"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/tenant"
)

// ConfigPaths are the prefixes of the configuration API: Mimir's (which
// mimirtool uses) and Cortex's (cortextool's default).
var ConfigPaths = []string{"/prometheus/config/v1/rules", "/api/v1/rules"}

// maxGroupBytes bounds a POSTed rule group.
const maxGroupBytes = 1 << 20

// ConfigHandler serves the rule configuration API under each of
// ConfigPaths, for the tenant the auth middleware put in the context:
//
//	GET    {prefix}                       every namespace (YAML map of namespace → groups)
//	GET    {prefix}/{namespace}           one namespace
//	GET    {prefix}/{namespace}/{group}   one group (YAML)
//	POST   {prefix}/{namespace}           a group (YAML body) replacing the one of that name
//	DELETE {prefix}/{namespace}           the whole namespace
//	DELETE {prefix}/{namespace}/{group}   one group
//
// as Mimir answers them: 404 when nothing matches, 202 on a change.
func (r *Ruler) ConfigHandler() http.Handler {
	mux := http.NewServeMux()
	for _, p := range ConfigPaths {
		mux.HandleFunc("GET "+p, r.listRules)
		mux.HandleFunc("GET "+p+"/{namespace}", r.listRules)
		mux.HandleFunc("GET "+p+"/{namespace}/{group}", r.getGroup)
		mux.HandleFunc("POST "+p+"/{namespace}", r.setGroup)
		mux.HandleFunc("DELETE "+p+"/{namespace}", r.deleteNamespace)
		mux.HandleFunc("DELETE "+p+"/{namespace}/{group}", r.deleteGroup)
	}
	return mux
}

// RoutePatterns are the mux patterns cmd mounts ConfigHandler under.
func RoutePatterns() []string {
	var out []string
	for _, p := range ConfigPaths {
		out = append(out, p, p+"/")
	}
	return out
}

func (r *Ruler) listRules(w http.ResponseWriter, req *http.Request) {
	tenantID, ok := requestTenant(w, req)
	if !ok {
		return
	}
	nss := r.store.Namespaces(tenantID)
	if ns := req.PathValue("namespace"); ns != "" {
		gs, ok := nss[ns]
		if !ok {
			writeError(w, apierror.Errorf(apierror.RuleGroupNotFound, "tenant %q: %w: namespace %q", tenantID, ErrNotFound, ns))
			return
		}
		nss = map[string][]rulefmt.RuleGroup{ns: gs}
	}
	if len(nss) == 0 {
		writeError(w, apierror.Errorf(apierror.RuleGroupNotFound, "tenant %q: %w", tenantID, ErrNotFound))
		return
	}
	writeYAML(w, nss)
}

func (r *Ruler) getGroup(w http.ResponseWriter, req *http.Request) {
	tenantID, ok := requestTenant(w, req)
	if !ok {
		return
	}
	ns, name := req.PathValue("namespace"), req.PathValue("group")
	gs := r.store.Namespaces(tenantID)[ns]
	i := slices.IndexFunc(gs, func(g rulefmt.RuleGroup) bool { return g.Name == name })
	if i < 0 {
		writeError(w, apierror.Errorf(apierror.RuleGroupNotFound, "tenant %q: %w: group %q in namespace %q", tenantID, ErrNotFound, name, ns))
		return
	}
	writeYAML(w, gs[i])
}

func (r *Ruler) setGroup(w http.ResponseWriter, req *http.Request) {
	tenantID, ok := requestTenant(w, req)
	if !ok {
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxGroupBytes+1))
	if err != nil {
		writeError(w, apierror.Errorf(apierror.InvalidRuleGroup, "tenant %q: read body: %w", tenantID, err))
		return
	}
	if len(body) > maxGroupBytes {
		writeError(w, apierror.Errorf(apierror.InvalidRuleGroup, "tenant %q: rule group larger than %d bytes", tenantID, maxGroupBytes))
		return
	}
	ns := req.PathValue("namespace")
	g, err := ParseGroup(body)
	if err != nil {
		var ae *apierror.Error
		if errors.As(err, &ae) {
			err = apierror.Errorf(ae.ID, "tenant %q, namespace %q: %s", tenantID, ns, ae.Msg)
		}
		writeError(w, err)
		return
	}
	lim := r.limitsFor(tenantID)
	if n := len(g.Rules); lim.RulerMaxRulesPerRuleGroup > 0 && n > lim.RulerMaxRulesPerRuleGroup {
		writeError(w, apierror.Errorf(apierror.TooManyRules, "tenant %q, namespace %q: group %q has %d rules, more than its limit (-ruler.max-rules-per-rule-group=%d)",
			tenantID, ns, g.Name, n, lim.RulerMaxRulesPerRuleGroup))
		return
	}
	if err := r.store.SetGroupLimited(tenantID, ns, g, lim.RulerMaxRuleGroupsPerTenant); err != nil {
		if errors.Is(err, ErrTooManyGroups) {
			err = apierror.Errorf(apierror.TooManyRuleGroups, "namespace %q, new group %q: %w", ns, g.Name, err)
		}
		writeError(w, err)
		return
	}
	r.poke()
	writeAccepted(w)
}

func (r *Ruler) deleteNamespace(w http.ResponseWriter, req *http.Request) {
	tenantID, ok := requestTenant(w, req)
	if !ok {
		return
	}
	ns := req.PathValue("namespace")
	r.afterDelete(w, r.store.DeleteNamespace(tenantID, ns), fmt.Sprintf("tenant %q: namespace %q", tenantID, ns))
}

func (r *Ruler) deleteGroup(w http.ResponseWriter, req *http.Request) {
	tenantID, ok := requestTenant(w, req)
	if !ok {
		return
	}
	ns, name := req.PathValue("namespace"), req.PathValue("group")
	r.afterDelete(w, r.store.DeleteGroup(tenantID, ns, name), fmt.Sprintf("tenant %q: group %q in namespace %q", tenantID, name, ns))
}

func (r *Ruler) afterDelete(w http.ResponseWriter, err error, what string) {
	if errors.Is(err, ErrNotFound) {
		writeError(w, apierror.Errorf(apierror.RuleGroupNotFound, "%s: %w", what, err))
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	r.poke()
	writeAccepted(w)
}

// requestTenant returns the request's one tenant, which the auth
// middleware put in its context.
func requestTenant(w http.ResponseWriter, req *http.Request) (string, bool) {
	id, err := tenant.FromContext(req.Context())
	if err != nil {
		writeError(w, apierror.Errorf(apierror.MissingTenant, "%w", err))
		return "", false
	}
	return id, true
}

func writeYAML(w http.ResponseWriter, v any) {
	b, err := yaml.Marshal(v)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(b)
}

// writeAccepted answers a change as Mimir does: 202 and a Prometheus API
// success envelope.
func writeAccepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"success","data":null,"errorType":"","error":""}`)
}

// writeError is the ruler's one mapping of errors to HTTP statuses: the
// apierror ID's status, else 500.
func writeError(w http.ResponseWriter, err error) {
	id, ok := apierror.IDOf(err)
	msg := err.Error()
	if !ok {
		id = apierror.Internal
		msg = string(id) + ": " + msg
	}
	http.Error(w, msg, id.Status())
}
