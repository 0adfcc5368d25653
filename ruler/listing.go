package ruler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/prometheus/prometheus/web/api/v1"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// listTimeout bounds the question to one ruler. A ruler answers from
// memory, so anything slower is a ruler in trouble; the whole answer waits
// for the slowest ruler, so this is also its bound.
const listTimeout = 10 * time.Second

// listConcurrency is how many rulers are asked at once.
const listConcurrency = 16

// ListerDeps are the runtime dependencies of a Lister.
type ListerDeps struct {
	// Membership names the alive rulers and their gRPC addresses; nil: the
	// Local ruler is the only one.
	Membership Membership
	// Local is this process's ruler, asked in-process; nil when the
	// process runs none (a querier that lists the rulers' groups).
	Local *Ruler
	// DialOptions connect to the other rulers' gRPC servers (their Ruler
	// service).
	DialOptions []grpc.DialOption
	Logger      *slog.Logger // nil discards
}

// Lister answers a tenant's /prometheus/api/v1/rules and /alerts with the
// groups of every alive ruler: it asks each (the Ruler gRPC service, or
// the local ruler in-process), merges their groups, each once, and answers
// in Prometheus's JSON with Prometheus's filters and pagination. A ruler
// that does not answer fails the request (503 err-argus-ruler-unavailable)
// rather than leaving its groups out. It is safe for concurrent use.
type Lister struct {
	deps   ListerDeps
	logger *slog.Logger
	render *renderer
	conns  *connPool
}

// NewLister returns a Lister. It does no I/O and starts nothing; as a
// service, its Stopping closes the connections it made.
func NewLister(deps ListerDeps) *Lister {
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Lister{deps: deps, logger: logger, render: newRenderer(logger), conns: newConnPool(deps.DialOptions)}
}

// Starting does nothing: connections are made on first use.
func (*Lister) Starting(context.Context) error { return nil }

// Running waits for the end.
func (*Lister) Running(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Stopping closes the connections to the other rulers. It is idempotent.
func (l *Lister) Stopping(context.Context) error {
	l.conns.close()
	return nil
}

// ListPaths are the Prometheus API paths a Lister serves (GET), for the
// tenant the auth middleware put in the context.
var ListPaths = []string{"/prometheus/api/v1/rules", "/prometheus/api/v1/alerts"}

// ServeHTTP answers GET ListPaths.
func (l *Lister) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet {
		writeAPIError(w, apierror.Errorf(apierror.MethodNotAllowed, "%s is not allowed on %s", req.Method, req.URL.Path), "bad_data")
		return
	}
	tenantID, err := tenant.FromContext(req.Context())
	if err != nil {
		writeAPIError(w, apierror.Errorf(apierror.MissingTenant, "%w", err), "bad_data")
		return
	}
	if path.Base(req.URL.Path) == "alerts" {
		l.serveAlerts(w, req.Context(), tenantID)
		return
	}
	l.serveRules(w, req.Context(), tenantID, req.URL.Query())
}

// serveRules answers /api/v1/rules. Prometheus's own handler checks the
// parameters first (over no groups), so that a bad one gets Prometheus's
// answer; every ruler then filters its groups, and the merged list is
// paginated here.
func (l *Lister) serveRules(w http.ResponseWriter, ctx context.Context, tenantID string, q url.Values) {
	check := cloneValues(q)
	if q.Get("group_limit") != "" {
		check.Del("group_next_token") // It can only be checked against the merged list.
	}
	if status, body := l.render.render(ctx, nil, "rules", check); status != http.StatusOK {
		writeRendered(w, status, body)
		return
	}
	filters := cloneValues(q)
	filters.Del("group_limit")
	filters.Del("group_next_token")
	groups, err := l.collect(ctx, tenantID, filters)
	if err != nil {
		writeAPIError(w, err, errorTypeOf(err))
		return
	}
	page, next, ok := paginate(groups, q)
	if !ok {
		// A token of no group: Prometheus's own answer to it.
		status, body := l.render.render(ctx, nil, "rules", q)
		writeRendered(w, status, body)
		return
	}
	writeAPISuccess(w, &v1.RuleDiscovery{RuleGroups: page, GroupNextToken: next})
}

// serveAlerts answers /api/v1/alerts: the alerts of every alerting rule of
// the merged groups, in their order.
func (l *Lister) serveAlerts(w http.ResponseWriter, ctx context.Context, tenantID string) {
	groups, err := l.collect(ctx, tenantID, url.Values{"type": {"alert"}})
	if err != nil {
		writeAPIError(w, err, errorTypeOf(err))
		return
	}
	alerts := []*v1.Alert{}
	for _, g := range groups {
		for _, r := range g.Rules {
			if ar, ok := r.(v1.AlertingRule); ok {
				alerts = append(alerts, ar.Alerts...)
			}
		}
	}
	writeAPISuccess(w, &v1.AlertDiscovery{Alerts: alerts})
}

// paginate returns the page of groups that Prometheus's group_limit and
// group_next_token select, and the next page's token; ok is false for a
// token that names no group. The parameters were checked.
func paginate(groups []*v1.RuleGroup, q url.Values) (page []*v1.RuleGroup, next string, ok bool) {
	limit, err := strconv.Atoi(q.Get("group_limit"))
	if err != nil || limit <= 0 {
		return groups, "", true
	}
	if token := q.Get("group_next_token"); token != "" {
		i := slices.IndexFunc(groups, func(g *v1.RuleGroup) bool { return groupPageToken(g.File, g.Name) == token })
		if i < 0 {
			return nil, "", false
		}
		groups = groups[i:]
	}
	if len(groups) > limit {
		return groups[:limit], groupPageToken(groups[limit].File, groups[limit].Name), true
	}
	return groups, "", true
}

// groupPageToken is a group's group_next_token, as Prometheus computes it
// (hex SHA-256 of "file;group"), so that a client may page over one ruler
// and go on at another.
func groupPageToken(file, group string) string {
	h := sha256.Sum256([]byte(file + ";" + group))
	return hex.EncodeToString(h[:])
}

// peer is one ruler to ask: its member name and gRPC address.
type peer struct{ name, addr string }

// peers returns the alive rulers, sorted by name, and this process's
// member name.
func (l *Lister) peers() ([]peer, string) {
	if l.deps.Membership == nil {
		return []peer{{name: "self"}}, "self"
	}
	self := l.deps.Membership.LocalMember()
	addrs := l.deps.Membership.MemberAddrs(Role)
	if l.deps.Local != nil {
		if _, ok := addrs[self]; !ok {
			addrs[self] = "" // alive to itself before the gossip says so
		}
	}
	out := make([]peer, 0, len(addrs))
	for _, name := range slices.Sorted(maps.Keys(addrs)) {
		out = append(out, peer{name: name, addr: addrs[name]})
	}
	return out, self
}

// collect asks every alive ruler for the tenant's groups that match
// filters and returns them merged: sorted by file (namespace) and name,
// each group once, as its owner on the ring lists it (during a move both
// rulers may list it; without the owner's copy, the one evaluated last).
func (l *Lister) collect(ctx context.Context, tenantID string, filters url.Values) ([]*v1.RuleGroup, error) {
	peers, self := l.peers()
	if len(peers) == 0 {
		return nil, apierror.Errorf(apierror.NotSupported, "no ruler is alive in the gossip cluster: rule groups are listed by the rulers (-target=ruler, or -target=all)")
	}
	answers := make([][]*v1.RuleGroup, len(peers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(listConcurrency)
	for i, p := range peers {
		g.Go(func() error {
			var err error
			answers[i], err = l.ask(gctx, tenantID, p, p.name == self, filters)
			if err != nil {
				return apierror.Errorf(apierror.RulerUnavailable, "ruler %s (%s) did not list its rule groups: %w", p.name, p.addr, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	names := make([]string, len(peers))
	for i, p := range peers {
		names[i] = p.name
	}
	ring := newMemberRing(names)
	type pick struct {
		g       *v1.RuleGroup
		byOwner bool
	}
	merged := map[[2]string]pick{}
	for i, gs := range answers {
		for _, grp := range gs {
			key := [2]string{grp.File, grp.Name}
			byOwner := ring.Owner(groupToken(tenantID, grp.File, grp.Name)) == peers[i].name
			cur, seen := merged[key]
			if !seen || (byOwner && !cur.byOwner) || (byOwner == cur.byOwner && grp.LastEvaluation.After(cur.g.LastEvaluation)) {
				merged[key] = pick{g: grp, byOwner: byOwner}
			}
		}
	}
	out := make([]*v1.RuleGroup, 0, len(merged))
	for _, p := range merged {
		out = append(out, p.g)
	}
	slices.SortFunc(out, func(a, b *v1.RuleGroup) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

// ask returns one ruler's groups of the tenant that match filters.
func (l *Lister) ask(ctx context.Context, tenantID string, p peer, local bool, filters url.Values) ([]*v1.RuleGroup, error) {
	var body []byte
	if local && l.deps.Local != nil {
		var err error
		if body, err = l.deps.Local.localRules(ctx, tenantID, filters); err != nil {
			return nil, err
		}
	} else {
		if p.addr == "" {
			return nil, errors.New("it gossips no gRPC address (-server.grpc-listen-port, or an older version)")
		}
		conn, err := l.conns.get(p.addr)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(tenant.OutgoingContext(ctx, tenantID), listTimeout)
		defer cancel()
		resp, err := arguspb.NewRulerClient(conn).Rules(ctx, &arguspb.RulesRequest{Query: filters.Encode()})
		if err != nil {
			return nil, err
		}
		body = resp.Json
	}
	return decodeGroups(body)
}

// decodeGroups decodes Prometheus's /api/v1/rules answer into its own API
// types, each rule as the type its "type" names, and sorts each alerting
// rule's alerts by their labels (Prometheus lists them in map order), so
// that every ruler answers the same bytes.
func decodeGroups(body []byte) ([]*v1.RuleGroup, error) {
	var resp struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Groups []struct {
				v1.RuleGroup
				Rules []json.RawMessage `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("decode rules: %w", err)
	}
	if resp.Status != "success" {
		return nil, fmt.Errorf("rules: %s", resp.Error)
	}
	out := make([]*v1.RuleGroup, 0, len(resp.Data.Groups))
	for _, wg := range resp.Data.Groups {
		g := wg.RuleGroup
		g.Rules = make([]v1.Rule, 0, len(wg.Rules))
		for _, raw := range wg.Rules {
			r, err := decodeRule(raw)
			if err != nil {
				return nil, fmt.Errorf("group %q of %q: %w", g.Name, g.File, err)
			}
			g.Rules = append(g.Rules, r)
		}
		out = append(out, &g)
	}
	return out, nil
}

func decodeRule(raw json.RawMessage) (v1.Rule, error) {
	var kind struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &kind); err != nil {
		return nil, fmt.Errorf("decode rule: %w", err)
	}
	switch kind.Type {
	case "alerting":
		var r v1.AlertingRule
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("decode alerting rule: %w", err)
		}
		slices.SortFunc(r.Alerts, func(a, b *v1.Alert) int { return labelsCompare(a, b) })
		return r, nil
	case "recording":
		var r v1.RecordingRule
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("decode recording rule: %w", err)
		}
		return r, nil
	}
	return nil, fmt.Errorf("rule of unknown type %q", kind.Type)
}

func labelsCompare(a, b *v1.Alert) int {
	if c := strings.Compare(a.Labels.String(), b.Labels.String()); c != 0 {
		return c
	}
	return strings.Compare(a.State, b.State)
}

// localRules is this ruler's Prometheus answer to /api/v1/rules?filters
// over the tenant's groups it evaluates.
func (r *Ruler) localRules(ctx context.Context, tenantID string, filters url.Values) ([]byte, error) {
	status, body := r.render.render(ctx, r.TenantView(tenant.With(ctx, tenantID)), "rules", filters)
	if status != http.StatusOK {
		return nil, fmt.Errorf("rules answered %d: %s", status, body)
	}
	return body, nil
}

// GRPCServer returns the ruler's gRPC service (arguspb.Ruler), which the
// Listers of the other processes ask.
func (r *Ruler) GRPCServer() arguspb.RulerServer { return rulerServer{r: r} }

type rulerServer struct {
	arguspb.UnimplementedRulerServer
	r *Ruler
}

// Rules answers the tenant's groups this ruler evaluates, filtered as the
// request says.
func (s rulerServer) Rules(ctx context.Context, req *arguspb.RulesRequest) (*arguspb.RulesResponse, error) {
	tenantID, err := tenant.FromContext(ctx)
	if err != nil {
		return nil, err
	}
	filters, err := url.ParseQuery(req.Query)
	if err != nil {
		return nil, fmt.Errorf("rules query: %w", err)
	}
	body, err := s.r.localRules(ctx, tenantID, filters)
	if err != nil {
		return nil, err
	}
	return &arguspb.RulesResponse{Json: body}, nil
}

// errorTypeOf is the Prometheus errorType of a collect error.
func errorTypeOf(err error) string {
	if id, _ := apierror.IDOf(err); id == apierror.NotSupported {
		return "not_found"
	}
	return "unavailable"
}

func cloneValues(q url.Values) url.Values {
	out := make(url.Values, len(q))
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	return out
}

// writeAPISuccess answers data in Prometheus's success envelope, encoded by
// Prometheus's own codec.
func writeAPISuccess(w http.ResponseWriter, data any) {
	b, err := v1.JSONCodec{}.Encode(&v1.Response{Status: "success", Data: data})
	if err != nil {
		writeAPIError(w, apierror.Errorf(apierror.Internal, "encode: %w", err), "internal")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b) // The client is gone if this fails.
}

// writeAPIError answers err in Prometheus's error envelope with its ID's
// status (500 without an ID).
func writeAPIError(w http.ResponseWriter, err error, errorType string) {
	id, ok := apierror.IDOf(err)
	msg := err.Error()
	if !ok {
		id, msg = apierror.Internal, string(apierror.Internal)+": "+msg
	}
	b, _ := json.Marshal(&v1.Response{Status: "error", ErrorType: errorType, Error: msg}) // Cannot fail: strings only.
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(id.Status())
	_, _ = w.Write(b)
}

// writeRendered answers Prometheus's own error answer, its text prefixed
// with err-argus-bad-query (a bad parameter, bad_data) as the querier's API
// does, status and envelope kept.
func writeRendered(w http.ResponseWriter, status int, body []byte) {
	var resp v1.Response
	if json.Unmarshal(body, &resp) == nil && resp.Status == "error" && !strings.HasPrefix(resp.Error, apierror.Prefix) {
		id := apierror.QueryFailed
		if resp.ErrorType == "bad_data" {
			id = apierror.BadQuery
		}
		resp.Error = string(id) + ": " + resp.Error
		if b, err := json.Marshal(&resp); err == nil {
			body = b
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
