package ring

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func newStatusKV(t *testing.T) *KV {
	t.Helper()
	now := time.Now()
	kv, err := NewKV(testMemberlistConfig(), Options{ReplicationFactor: 3, HeartbeatTimeout: time.Minute, Now: func() time.Time { return now }}, Deps{})
	require.NoError(t, err)
	kv.Update("ing-a", InstanceDesc{Addr: "10.0.0.1:9095", Zone: "z1", State: StateActive, Tokens: []uint32{0, 1 << 31}, HeartbeatUnixMillis: now.UnixMilli()})
	kv.Update("ing-b", InstanceDesc{Addr: "10.0.0.2:9095", Zone: "z2", State: StateActive, Tokens: []uint32{1 << 30}, HeartbeatUnixMillis: now.Add(-2 * time.Minute).UnixMilli()})
	kv.Update("ing-c", InstanceDesc{Addr: "10.0.0.3:9095", State: StateLeft, HeartbeatUnixMillis: now.UnixMilli()})
	return kv
}

func TestRingHandler_JSON(t *testing.T) {
	kv := newStatusKV(t)
	req := httptest.NewRequest(http.MethodGet, "/ring", nil)
	req.Header.Set("Accept", "application/json")
	rec := httptest.NewRecorder()
	kv.RingHandler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var st RingStatus
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &st))
	require.Equal(t, 3, st.ReplicationFactor)
	require.Len(t, st.Instances, 3)
	a, b, c := st.Instances[0], st.Instances[1], st.Instances[2]
	require.Equal(t, []string{"ing-a", "ACTIVE", "z1", "10.0.0.1:9095"}, []string{a.ID, a.State, a.Zone, a.Addr})
	require.InDelta(t, 0.75, a.OwnedRatio, 1e-9)
	require.Equal(t, "UNHEALTHY", b.State)
	require.InDelta(t, 0.25, b.OwnedRatio, 1e-9)
	require.Equal(t, "LEFT", c.State)
}

func TestRingHandler_HTMLAndForget(t *testing.T) {
	kv := newStatusKV(t)
	srv := httptest.NewServer(kv.RingHandler())
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + "/ring")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	page := string(body)
	for _, s := range []string{"ing-a", "ing-b", "UNHEALTHY", "75.0 %", "10.0.0.2:9095", `name="forget" value="ing-b"`} {
		require.Contains(t, page, s)
	}
	require.NotContains(t, page, `value="ing-c"`, "LEFT instances have no Forget button")

	// The Forget button posts to the same path and redirects back to the page.
	resp, err = http.PostForm(srv.URL+"/ring", url.Values{"forget": {"ing-b"}})
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), "ing-b")
	require.Equal(t, StateLeft, kv.Desc().Instances["ing-b"].State)

	// Forget over JSON, and the errors.
	post := func(form string) *http.Response {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/ring", strings.NewReader(form))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	require.Equal(t, http.StatusOK, post("forget=ing-a").StatusCode)
	require.Equal(t, StateLeft, kv.Desc().Instances["ing-a"].State)
	require.Equal(t, http.StatusNotFound, post("forget=nope").StatusCode)
	require.Equal(t, http.StatusBadRequest, post("").StatusCode)

	req, err := http.NewRequest(http.MethodDelete, srv.URL+"/ring", nil)
	require.NoError(t, err)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestMembersHandler(t *testing.T) {
	m := startMember(t, "ing-x", "", "")
	req := httptest.NewRequest(http.MethodGet, "/memberlist", nil)
	req.Header.Set("Accept", "application/json")
	rec := httptest.NewRecorder()
	m.kv.MembersHandler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	var v struct {
		Self    string   `json:"self"`
		Members []Member `json:"members"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v))
	require.Equal(t, m.kv.Addr(), v.Self)
	require.Equal(t, []Member{{Name: "ing-x", Addr: m.kv.Addr(), State: "alive"}}, v.Members)

	rec = httptest.NewRecorder()
	m.kv.MembersHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/memberlist", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), "ing-x")
}
