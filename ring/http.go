package ring

import (
	"encoding/json"
	"errors"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/argus-tsdb/argus/internal/apierror"
)

// InstanceStatus is one row of the /ring page.
type InstanceStatus struct {
	ID            string    `json:"id"`
	Zone          string    `json:"zone"`
	State         string    `json:"state"` // JOINING, ACTIVE, LEAVING, LEFT, or UNHEALTHY (heartbeat expired)
	OwnedRatio    float64   `json:"owned_ratio"`
	Tokens        int       `json:"tokens"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
	Addr          string    `json:"addr"`
	RegisteredAt  time.Time `json:"registered_at"`
}

// RingStatus is the JSON answer of the /ring page.
type RingStatus struct {
	ReplicationFactor int              `json:"replication_factor"`
	Instances         []InstanceStatus `json:"instances"`
	// Static is set for a static ring (-ingester.ring.store=static): its
	// members are fixed, have no tokens and send no heartbeats.
	Static bool `json:"static,omitempty"`
}

// Status returns the ring as the /ring page shows it, by instance ID.
func (k *KV) Status() RingStatus {
	d := k.Desc()
	own := k.Ring().Ownership()
	now := k.opts.Now()
	st := RingStatus{ReplicationFactor: k.ReplicationFactor()}
	for _, id := range slices.Sorted(maps.Keys(d.Instances)) {
		in := d.Instances[id]
		s := in.State.String()
		if in.State != StateLeft && k.opts.HeartbeatTimeout > 0 && now.Sub(in.Heartbeat()) > k.opts.HeartbeatTimeout {
			s = stateUnhealthy
		}
		st.Instances = append(st.Instances, InstanceStatus{
			ID: id, Zone: in.Zone, State: s, OwnedRatio: own[id], Tokens: len(in.Tokens),
			LastHeartbeat: in.Heartbeat().UTC(), Addr: in.Addr, RegisteredAt: time.UnixMilli(in.RegisteredAt).UTC(),
		})
	}
	return st
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

var ringPage = template.Must(template.New("ring").Funcs(template.FuncMap{
	"pct": func(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + " %" },
	"ago": func(t time.Time) string { return time.Since(t).Truncate(time.Millisecond).String() + " ago" },
}).Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Argus ring</title>
<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left}</style></head>
<body><h1>Ring</h1><p>Replication factor {{.ReplicationFactor}}.{{if .Static}} The ring is static (-ingester.ring.store=static): its members are fixed, and each owns an equal share of the series.{{end}}</p>
<table><thead><tr><th>Instance</th><th>Zone</th><th>State</th><th>Owned</th><th>Tokens</th><th>Last heartbeat</th><th>Address</th><th></th></tr></thead><tbody>
{{range .Instances}}<tr><td>{{.ID}}</td><td>{{.Zone}}</td><td>{{.State}}</td><td>{{pct .OwnedRatio}}</td><td>{{.Tokens}}</td>
<td title="{{.LastHeartbeat}}">{{if .LastHeartbeat.IsZero}}-{{else}}{{ago .LastHeartbeat}}{{end}}</td><td>{{.Addr}}</td>
<td>{{if and (ne .State "LEFT") (not $.Static)}}<form method="post"><input type="hidden" name="forget" value="{{.ID}}"><button type="submit">Forget</button></form>{{end}}</td></tr>
{{end}}</tbody></table></body></html>
`))

// RingHandler serves /ring: GET shows the ring as an HTML table, or as JSON
// (RingStatus) when the request accepts application/json; POST with form
// value forget=<instance ID> forgets that instance (Forget), then redirects
// to the page (HTML) or answers {"forgotten": id} (JSON).
func (k *KV) RingHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodPost:
			k.serveForget(w, r)
			return
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			writeError(w, apierror.Errorf(apierror.MethodNotAllowed, "%s is not allowed on %s: use GET, or POST to forget an instance", r.Method, r.URL.Path))
			return
		}
		serveRing(w, r, k.Status())
	})
}

func serveRing(w http.ResponseWriter, r *http.Request, st RingStatus) {
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, st)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = ringPage.Execute(w, st)
}

// writeError answers err as plain text starting with its ID.
func writeError(w http.ResponseWriter, err *apierror.Error) {
	http.Error(w, err.Error(), err.ID.Status())
}

// RingHandler serves /ring for a static ring as KV's does: every instance
// ACTIVE with an equal share. A static ring has no tokens, no heartbeats and
// nothing to forget: POST is refused.
func (s *Static) RingHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, apierror.Errorf(apierror.MethodNotAllowed, "%s is not allowed on %s: the ring is static (-ingester.ring.store=static), its members are fixed", r.Method, r.URL.Path))
			return
		}
		st := RingStatus{ReplicationFactor: s.rf, Static: true}
		for _, in := range s.instances {
			st.Instances = append(st.Instances, InstanceStatus{
				ID: in.ID, Zone: in.Zone, State: StateActive.String(), OwnedRatio: 1 / float64(len(s.instances)), Addr: in.Addr,
			})
		}
		serveRing(w, r, st)
	})
}

func (k *KV) serveForget(w http.ResponseWriter, r *http.Request) {
	id := r.FormValue("forget")
	if id == "" {
		writeError(w, apierror.Errorf(apierror.InvalidParameter, "POST %s needs the form value forget=<instance ID>", r.URL.Path))
		return
	}
	if err := k.Forget(id); err != nil {
		id := apierror.Internal
		if errors.Is(err, ErrUnknownInstance) {
			id = apierror.NotFound
		}
		writeError(w, apierror.Errorf(id, "%w", err))
		return
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, map[string]string{"forgotten": id})
		return
	}
	http.Redirect(w, r, r.URL.Path, http.StatusSeeOther)
}

var membersPage = template.Must(template.New("members").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Argus memberlist</title>
<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left}</style></head>
<body><h1>Memberlist</h1><p>This process: {{.Self}}</p>
<table><thead><tr><th>Name</th><th>Address</th><th>State</th></tr></thead><tbody>
{{range .Members}}<tr><td>{{.Name}}</td><td>{{.Addr}}</td><td>{{.State}}</td></tr>
{{end}}</tbody></table></body></html>
`))

// MembersHandler serves /memberlist: the gossip members this process knows,
// as HTML, or as JSON ({"self": addr, "members": [Member]}) when the request
// accepts application/json.
func (k *KV) MembersHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, apierror.Errorf(apierror.MethodNotAllowed, "%s is not allowed on %s: use GET", r.Method, r.URL.Path))
			return
		}
		v := struct {
			Self    string   `json:"self"`
			Members []Member `json:"members"`
		}{Self: k.Addr(), Members: k.Members()}
		if wantsJSON(r) {
			writeJSON(w, http.StatusOK, v)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = membersPage.Execute(w, v)
	})
}
