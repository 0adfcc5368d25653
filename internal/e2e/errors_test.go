package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/auth"
	"github.com/argus-tsdb/argus/internal/clustertest"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// notTriggerable are the error IDs no request to a correctly deployed Argus
// can trigger, each with the test that covers it instead.
var notTriggerable = map[apierror.ID]string{
	apierror.Internal:              "an unexpected error: distributor.TestHTTPStatusFor maps unknown errors to it",
	apierror.NotReady:              "a request in the moment between HTTP listening and the token file loaded: auth.TestMiddleware_TokenNotLoadedYet",
	apierror.IngesterInvalidLabels: "needs an ingester that refuses what the distributor accepted (version skew): distributor.TestPush_IngesterRejections",
	apierror.IngesterRejected:      "needs an ingester newer than the distributor: distributor.TestPush_QuorumUnlistedRejections",
	apierror.IngesterTenantFailed:  "needs one tenant's persisted writes to fail while the others succeed, which nothing outside the process can cause (the tenants share their files): ingester.TestTenantFailure_OthersUnaffectedAndRecovers, with a test hook",
	apierror.DistributorOverload:   "needs pushes in flight at once, which one request of this table cannot make deterministically: TestOverload drives the real binary into it, and distributor.TestInstanceLimits_InflightRequests and _InflightBytes cover each limit",
	apierror.InvalidScrapeConfig:   "needs an argus started with a scraper configuration file to reload: TestScraperReload posts bad files to the real binary's /-/reload and checks the ID, and scraper.TestScraper_ReloadKeepsLastGoodConfig covers each kind of bad file",
	apierror.RulerUnavailable:      "needs a ruler alive to the gossip that does not answer, which takes a cluster: ruler.TestLister_MergesEveryRuler lists with an unreachable ruler",
	apierror.QueryCanceled:         "needs a caller that cancels its query and still reads the answer (an HTTP client that cancels closes its connection): querier.TestCallerDeadlineAndCancelGetIDs runs it through the whole API handler",
	apierror.IngesterFailed:        "needs a failed WAL write, which stops the ingester (tenants have no files of their own to fail apart): distributor.TestPush_IngesterErrors and ingester.TestPush_WALFailure",
}

// errorCase is one request of TestErrorContract and what it must answer.
type errorCase struct {
	id     apierror.ID
	target *clustertest.Process
	tenant string
	// do sends the request and returns the status, the body and the
	// Retry-After header. Preparation (earlier pushes) happens in it.
	do func(t *testing.T) (int, string, http.Header)
	// series is the offending series as the body must name it, if any.
	series string
	// otlp is set for an OTLP push: the answer is a 200 whose
	// partial_success error_message is checked as a body is.
	otlp bool
}

// TestErrorContract triggers every error ID of the contract with a real
// request to real argus processes and checks the status, that the body
// starts with the ID, names the tenant, the limit in force (as -flag=value)
// and the offending series, and that the process still serves afterwards.
// Every ID of apierror.Catalogue must be here or in notTriggerable.
func TestErrorContract(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	dir := t.TempDir()
	overrides := filepath.Join(dir, "overrides.yaml")
	require.NoError(t, os.WriteFile(overrides, []byte(`overrides:
  labels:
    max_label_names_per_series: 3
    max_label_name_length: 10
    max_label_value_length: 10
  size:
    max_recv_msg_size: 2000
  rate:
    ingestion_rate: 1
    ingestion_burst_size: 5
  user-series:
    max_global_series_per_user: 2
  metric-series:
    max_global_series_per_metric: 1
  q-series:
    max_fetched_series_per_query: 1
  q-chunks:
    max_fetched_chunks_per_query: 1
  q-length:
    max_query_length: 1h
  q-timeout:
    query_timeout: 1ns
  ha:
    accept_ha_samples: true
    ha_max_clusters: 1
  rl:
    ruler_max_rule_groups_per_tenant: 1
    ruler_max_rules_per_rule_group: 1
`), 0o644))
	tokenFile := filepath.Join(dir, "tokens.yaml")
	require.NoError(t, os.WriteFile(tokenFile, []byte(fmt.Sprintf("tokens:\n  - sha256: %q\n    tenants: [team-a]\n  - sha256: %q\n    tenants: [team-a]\n    admin: true\n",
		auth.HashToken("secret-a"), auth.HashToken("secret-admin"))), 0o644))

	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-runtime-config.file=" + overrides, "-api.enable-admin-api=true", "-distributor.ha-tracker.enable=true"}})
	tok := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-auth.type=token", "-auth.token-file=" + tokenFile}})
	// A distributor and querier whose one ingester is not there.
	dead := clustertest.FreePorts(t, 1)[0]
	orphan := clustertest.StartArgus(t, clustertest.Options{Flags: []string{
		"-target=distributor,querier", "-ingester.ring.store=static", fmt.Sprintf("-ingester.client.addresses=127.0.0.1:%d", dead), "-distributor.remote-timeout=2s",
		"-api.enable-admin-api=true",
	}})
	// A distributor on a gossiped ring that has no ingester at all.
	lonely := clustertest.StartArgus(t, clustertest.Options{Flags: []string{
		"-target=distributor", "-ingester.ring.store=memberlist", "-memberlist.bind-addr=127.0.0.1",
		fmt.Sprintf("-memberlist.bind-port=%d", clustertest.FreeMemberlistPorts(t, 1)[0]),
	}})

	// An all-in-one whose ingester holds at most one series in all.
	capped := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-ingester.instance-limits.max-series=1"}})

	now := time.Now().Truncate(time.Second).UnixMilli()
	ts := func(lbls ...string) clustertest.TimeSeries {
		return clustertest.TimeSeries{Labels: clustertest.Labels(lbls...), Samples: []clustertest.Sample{{T: now, V: 1}}}
	}
	push := func(p *clustertest.Process, tenant string, series ...clustertest.TimeSeries) func(*testing.T) (int, string, http.Header) {
		return func(t *testing.T) (int, string, http.Header) {
			return send(t, p, http.MethodPost, "/api/v1/push", tenant, nil, clustertest.EncodeWriteRequest(t, series))
		}
	}
	raw := func(p *clustertest.Process, method, tenant string, header map[string]string, body []byte) func(*testing.T) (int, string, http.Header) {
		return func(t *testing.T) (int, string, http.Header) {
			return send(t, p, method, "/api/v1/push", tenant, header, body)
		}
	}
	query := func(p *clustertest.Process, tenant, path string, params url.Values) func(*testing.T) (int, string, http.Header) {
		return func(t *testing.T) (int, string, http.Header) {
			code, body := p.Query(t, tenant, clustertest.PromAPI+path, params)
			return code, string(body), nil
		}
	}
	admin := func(p *clustertest.Process, tenant, path, token string, params url.Values) func(*testing.T) (int, string, http.Header) {
		return func(t *testing.T) (int, string, http.Header) {
			req, err := http.NewRequest(http.MethodPost, p.URL()+clustertest.PromAPI+path+"?"+params.Encode(), nil)
			require.NoError(t, err)
			req.Header.Set(clustertest.TenantHeader, tenant)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			code, body := p.Do(t, req)
			return code, string(body), nil
		}
	}
	then := func(first, second func(*testing.T) (int, string, http.Header)) func(*testing.T) (int, string, http.Header) {
		return func(t *testing.T) (int, string, http.Header) {
			code, body, _ := first(t)
			require.Equal(t, http.StatusNoContent, code, "preparation: %s", body)
			return second(t)
		}
	}
	at := clustertest.FormatAPITime(now)
	two := []clustertest.TimeSeries{ts("__name__", "q_metric", "i", "1"), ts("__name__", "q_metric", "i", "2")}
	histogram := func(t *testing.T) (int, string, http.Header) {
		req := &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{{
			Labels:     []*arguspb.Label{{Name: "__name__", Value: "h"}},
			Histograms: [][]byte{{0x08, 0x01}},
		}}}
		b, err := req.MarshalVT()
		require.NoError(t, err)
		return send(t, a, http.MethodPost, "/api/v1/push", "t1", nil, snappy.Encode(nil, b))
	}

	// exmeta pushes a series {__name__="ex"} with one sample and the
	// exemplar e, or a metadata entry m alone.
	exmeta := func(e *prompb.Exemplar, m *prompb.MetricMetadata) func(*testing.T) (int, string, http.Header) {
		return func(t *testing.T) (int, string, http.Header) {
			req := &arguspb.WriteRequest{}
			if e != nil {
				b, err := e.Marshal()
				require.NoError(t, err)
				req.Timeseries = []*arguspb.TimeSeries{{Labels: []*arguspb.Label{{Name: "__name__", Value: "ex"}},
					Samples: []*arguspb.Sample{{Value: 1, TimestampMs: now}}, Exemplars: [][]byte{b}}}
			}
			if m != nil {
				b, err := m.Marshal()
				require.NoError(t, err)
				req.Metadata = [][]byte{b}
			}
			b, err := req.MarshalVT()
			require.NoError(t, err)
			return send(t, a, http.MethodPost, "/api/v1/push", "t1", nil, snappy.Encode(nil, b))
		}
	}
	trace := []prompb.Label{{Name: "trace_id", Value: "abc"}}

	cases := []errorCase{
		{id: apierror.MissingTenant, target: a, do: push(a, "", ts("__name__", "m"))},
		{id: apierror.InvalidTenant, target: a, do: push(a, "a/b", ts("__name__", "m"))},
		{id: apierror.Unauthorized, target: tok, tenant: "team-a", do: raw(tok, http.MethodPost, "team-a", map[string]string{"Authorization": "Bearer wrong"}, clustertest.EncodeWriteRequest(t, []clustertest.TimeSeries{ts("__name__", "m")}))},
		{id: apierror.MethodNotAllowed, target: a, tenant: "t1", do: raw(a, http.MethodPut, "t1", nil, nil)},
		{id: apierror.UnsupportedMediaType, target: a, tenant: "t1", do: raw(a, http.MethodPost, "t1", map[string]string{"Content-Encoding": "gzip"}, []byte("x"))},
		{id: apierror.RequestTooLarge, target: a, tenant: "size", do: raw(a, http.MethodPost, "size", nil, make([]byte, 3000))},
		{id: apierror.MalformedRequest, target: a, tenant: "t1", do: raw(a, http.MethodPost, "t1", nil, []byte("not snappy at all"))},
		{id: apierror.RW2InvalidReference, target: a, tenant: "t1", do: rw2BadReference(a, "t1", now), series: `{__name__="up", job="<ref 9>"}`},
		{id: apierror.OTLPDeltaTemporality, target: a, tenant: "t1", otlp: true, series: `"bytes.sent": delta`,
			do: otlpPush(a, "t1", otlpOneMetric("bytes.sent", now, pmetric.MetricTypeSum, pmetric.AggregationTemporalityDelta))},
		{id: apierror.OTLPTranslation, target: a, tenant: "t1", otlp: true, series: "unsupported metric type",
			do: otlpPush(a, "t1", otlpOneMetric("nodata", now, pmetric.MetricTypeEmpty, 0))},
		{id: apierror.IngestionRateLimited, target: a, tenant: "rate", series: `{__name__="r", i="0"}`,
			do: then(push(a, "rate", ts("__name__", "r", "i", "0"), ts("__name__", "r", "i", "1"), ts("__name__", "r", "i", "2"), ts("__name__", "r", "i", "3"), ts("__name__", "r", "i", "4")),
				push(a, "rate", ts("__name__", "r", "i", "0"), ts("__name__", "r", "i", "1")))},
		{id: apierror.HAReplicaNotElected, target: a, tenant: "ha",
			do: then(push(a, "ha", ts("__name__", "m", "__replica__", "r1", "cluster", "c1")), push(a, "ha", ts("__name__", "m", "__replica__", "r2", "cluster", "c1")))},
		{id: apierror.TooManyHAClusters, target: a, tenant: "ha",
			do: then(push(a, "ha", ts("__name__", "m", "__replica__", "r1", "cluster", "c1")), push(a, "ha", ts("__name__", "m", "__replica__", "r1", "cluster", "c2")))},
		{id: apierror.TooFewIngesters, target: lonely, tenant: "t1", do: push(lonely, "t1", ts("__name__", "m"))},
		{id: apierror.IngesterUnavailable, target: orphan, tenant: "t1", do: push(orphan, "t1", ts("__name__", "m"))},

		{id: apierror.MissingMetricName, target: a, tenant: "t1", series: `{job="x"}`, do: push(a, "t1", ts("job", "x"))},
		{id: apierror.InvalidMetricName, target: a, tenant: "t1", do: push(a, "t1", ts("__name__", "bad\xff"))},
		{id: apierror.InvalidLabelName, target: a, tenant: "t1", do: push(a, "t1", ts("__name__", "m", "bad\xff", "v"))},
		{id: apierror.InvalidLabelValue, target: a, tenant: "t1", do: push(a, "t1", ts("__name__", "m", "l", "bad\xff"))},
		{id: apierror.DuplicateLabelNames, target: a, tenant: "t1", series: `{__name__="m", a="1", a="2"}`, do: push(a, "t1", ts("__name__", "m", "a", "1", "a", "2"))},
		{id: apierror.MaxLabelNamesPerSeries, target: a, tenant: "labels", series: `{__name__="m", a="1", b="2", c="3"}`, do: push(a, "labels", ts("__name__", "m", "a", "1", "b", "2", "c", "3"))},
		{id: apierror.LabelNameTooLong, target: a, tenant: "labels", series: `{__name__="m", abcdefghijk="1"}`, do: push(a, "labels", ts("__name__", "m", "abcdefghijk", "1"))},
		{id: apierror.LabelValueTooLong, target: a, tenant: "labels", series: `{__name__="m", a="12345678901"}`, do: push(a, "labels", ts("__name__", "m", "a", "12345678901"))},
		{id: apierror.TooFarInFuture, target: a, tenant: "t1", series: `{__name__="future"}`, do: push(a, "t1", clustertest.TimeSeries{
			Labels: clustertest.Labels("__name__", "future"), Samples: []clustertest.Sample{{T: now + time.Hour.Milliseconds(), V: 1}}})},
		{id: apierror.InvalidNativeHistogram, target: a, tenant: "t1", series: `{__name__="h"}`, do: histogram},
		{id: apierror.SampleOutOfOrder, target: a, tenant: "t1", series: `{__name__="ooo"}`, do: then(
			push(a, "t1", clustertest.TimeSeries{Labels: clustertest.Labels("__name__", "ooo"), Samples: []clustertest.Sample{{T: now, V: 1}}}),
			push(a, "t1", clustertest.TimeSeries{Labels: clustertest.Labels("__name__", "ooo"), Samples: []clustertest.Sample{{T: now - 1000, V: 1}}}))},
		{id: apierror.SampleDuplicate, target: a, tenant: "t1", series: `{__name__="dup"}`, do: then(
			push(a, "t1", clustertest.TimeSeries{Labels: clustertest.Labels("__name__", "dup"), Samples: []clustertest.Sample{{T: now, V: 1}}}),
			push(a, "t1", clustertest.TimeSeries{Labels: clustertest.Labels("__name__", "dup"), Samples: []clustertest.Sample{{T: now, V: 2}}}))},
		{id: apierror.SampleTooOld, target: a, tenant: "t1", series: `{__name__="old"}`, do: push(a, "t1", clustertest.TimeSeries{
			Labels: clustertest.Labels("__name__", "old"), Samples: []clustertest.Sample{{T: now - 2*time.Hour.Milliseconds(), V: 1}}})},
		{id: apierror.MaxSeriesPerUser, target: a, tenant: "user-series", series: `{__name__="u", i="3"}`,
			do: push(a, "user-series", ts("__name__", "u", "i", "1"), ts("__name__", "u", "i", "2"), ts("__name__", "u", "i", "3"))},
		{id: apierror.MaxSeriesPerMetric, target: a, tenant: "metric-series", series: `{__name__="pm", i="2"}`,
			do: push(a, "metric-series", ts("__name__", "pm", "i", "1"), ts("__name__", "pm", "i", "2"), ts("__name__", "other", "i", "1"))},

		{id: apierror.InvalidExemplar, target: a, tenant: "t1", series: `{__name__="ex"}`,
			do: exmeta(&prompb.Exemplar{Labels: append(slices.Clone(trace), trace...), Value: 1, Timestamp: now}, nil)},
		{id: apierror.ExemplarMissingTimestamp, target: a, tenant: "t1", series: `{__name__="ex"}`,
			do: exmeta(&prompb.Exemplar{Labels: trace, Value: 1}, nil)},
		{id: apierror.ExemplarLabelsTooLong, target: a, tenant: "t1", series: `{__name__="ex"}`,
			do: exmeta(&prompb.Exemplar{Labels: []prompb.Label{{Name: "trace_id", Value: strings.Repeat("x", 121)}}, Value: 1, Timestamp: now}, nil)},
		{id: apierror.InvalidMetadata, target: a, tenant: "t1", series: `"bad`,
			do: exmeta(nil, &prompb.MetricMetadata{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "bad\xff"})},
		{id: apierror.MetadataMissingMetricName, target: a, tenant: "t1",
			do: exmeta(nil, &prompb.MetricMetadata{Type: prompb.MetricMetadata_GAUGE, Help: "no name"})},
		{id: apierror.MetadataTooLong, target: a, tenant: "t1", series: `"long"`,
			do: exmeta(nil, &prompb.MetricMetadata{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "long", Help: strings.Repeat("h", 1025)})},

		{id: apierror.IngesterOverloaded, target: capped, tenant: "t1",
			do: then(push(capped, "t1", ts("__name__", "one")), push(capped, "t1", ts("__name__", "two")))},

		{id: apierror.MaxFetchedSeriesPerQuery, target: a, tenant: "q-series", do: then(push(a, "q-series", two...),
			query(a, "q-series", "/query", url.Values{"query": {"q_metric"}, "time": {at}}))},
		{id: apierror.MaxFetchedChunksPerQuery, target: a, tenant: "q-chunks", do: then(push(a, "q-chunks", two...),
			query(a, "q-chunks", "/query", url.Values{"query": {"q_metric"}, "time": {at}}))},
		{id: apierror.MaxQueryLength, target: a, tenant: "q-length", do: query(a, "q-length", "/query_range", url.Values{
			"query": {"q_metric"}, "start": {clustertest.FormatAPITime(now - 2*time.Hour.Milliseconds())}, "end": {at}, "step": {"60"}})},
		{id: apierror.QueryTimeout, target: a, tenant: "q-timeout", do: query(a, "q-timeout", "/query", url.Values{"query": {"up"}, "time": {at}})},
		{id: apierror.QueryUnavailable, target: orphan, tenant: "t1", do: query(orphan, "t1", "/query", url.Values{"query": {"up"}, "time": {at}})},
		// Prometheus's own bad_data and execution errors, in its envelope
		// with the ID first (no tenant in the text: it is Prometheus's).
		{id: apierror.BadQuery, target: a, do: query(a, "t1", "/query", url.Values{"query": {"sum("}, "time": {at}})},
		{id: apierror.QueryFailed, target: a, do: then(push(a, "q-failed", two...),
			query(a, "q-failed", "/query", url.Values{"query": {"q_metric * on() q_metric"}, "time": {at}}))},

		{id: apierror.AdminAPIDisabled, target: tok, tenant: "team-a", do: admin(tok, "team-a", "/admin/tsdb/delete_series", "secret-admin", url.Values{"match[]": {"up"}})},
		{id: apierror.AdminForbidden, target: tok, tenant: "team-a", do: admin(tok, "team-a", "/admin/tsdb/delete_series", "secret-a", url.Values{"match[]": {"up"}})},
		{id: apierror.InvalidDeleteRequest, target: a, tenant: "t1", do: admin(a, "t1", "/admin/tsdb/delete_series", "", url.Values{"match[]": {`{job=~".*"}`}})},
		{id: apierror.InvalidStatsRequest, target: a, tenant: "t1", do: query(a, "t1", "/status/tsdb", url.Values{"limit": {"0"}})},
		{id: apierror.AdminPartialFailure, target: orphan, tenant: "t1", do: admin(orphan, "t1", "/admin/tsdb/delete_series", "", url.Values{"match[]": {"up"}})},
		{id: apierror.StatsUnavailable, target: orphan, tenant: "t1", do: query(orphan, "t1", "/status/tsdb", nil)},

		{id: apierror.InvalidRuleGroup, target: a, tenant: "t1", do: func(t *testing.T) (int, string, http.Header) {
			return send(t, a, http.MethodPost, "/prometheus/config/v1/rules/ns", "t1", nil, []byte("name: g\nrules:\n  - record: r\n    expr: sum(\n"))
		}},
		{id: apierror.TooManyRules, target: a, tenant: "rl", do: func(t *testing.T) (int, string, http.Header) {
			return send(t, a, http.MethodPost, "/prometheus/config/v1/rules/ns", "rl", nil, []byte("name: g2\nrules:\n  - record: r1\n    expr: vector(1)\n  - record: r2\n    expr: vector(2)\n"))
		}},
		{id: apierror.TooManyRuleGroups, target: a, tenant: "rl", do: func(t *testing.T) (int, string, http.Header) {
			code, body, _ := send(t, a, http.MethodPost, "/prometheus/config/v1/rules/ns", "rl", nil, []byte("name: g1\nrules:\n  - record: r1\n    expr: vector(1)\n"))
			require.Equal(t, http.StatusAccepted, code, body)
			return send(t, a, http.MethodPost, "/prometheus/config/v1/rules/ns", "rl", nil, []byte("name: g3\nrules:\n  - record: r1\n    expr: vector(1)\n"))
		}},
		{id: apierror.RuleGroupNotFound, target: a, tenant: "t1", do: func(t *testing.T) (int, string, http.Header) {
			return send(t, a, http.MethodGet, "/prometheus/config/v1/rules/nope", "t1", nil, nil)
		}},
		{id: apierror.NotFound, target: a, do: func(t *testing.T) (int, string, http.Header) {
			code, body, h := send(t, a, http.MethodGet, "/api/v1/query", "t1", nil, nil)
			require.Contains(t, body, "/prometheus/api/v1/query", "the hint names the path meant")
			return code, body, h
		}},
		{id: apierror.NotSupported, target: a, do: func(t *testing.T) (int, string, http.Header) {
			code, body := a.Query(t, "t1", clustertest.PromAPI+"/status/runtimeinfo", nil)
			var resp struct{ Status, ErrorType, Error string }
			require.NoError(t, json.Unmarshal(body, &resp), string(body))
			require.Equal(t, "error", resp.Status)
			return code, resp.Error, nil
		}},
		{id: apierror.InvalidParameter, target: a, do: func(t *testing.T) (int, string, http.Header) {
			return send(t, a, http.MethodGet, "/config?mode=everything", "", nil, nil)
		}},
	}

	seen := map[apierror.ID]bool{}
	for _, c := range cases {
		t.Run(string(c.id), func(t *testing.T) {
			entry, ok := apierror.Lookup(c.id)
			require.True(t, ok)
			seen[c.id] = true
			code, body, header := c.do(t)
			msg := body
			if c.otlp {
				require.Equal(t, http.StatusOK, code, "body: %s", body)
				msg = otlpPartialMessage(t, body)
			} else {
				require.Equal(t, entry.Status, code, "body: %s", body)
			}
			if entry.Scope == apierror.ScopeQuery || entry.Scope == apierror.ScopeAdmin {
				var resp struct{ Status, ErrorType, Error string }
				require.NoError(t, json.Unmarshal([]byte(body), &resp), body)
				require.Equal(t, "error", resp.Status)
				msg = resp.Error
			}
			require.True(t, strings.HasPrefix(msg, string(c.id)+": "), "the message must start with its ID: %s", msg)
			if c.tenant != "" {
				require.Contains(t, msg, fmt.Sprintf("tenant %q", c.tenant))
			}
			if entry.Flag != "" {
				require.Contains(t, msg, "-"+entry.Flag+"=", "the message must name the limit in force")
			}
			if c.series != "" {
				require.Contains(t, msg, c.series, "the message must name the offending series")
			}
			if code == http.StatusTooManyRequests {
				require.NotEmpty(t, header.Get("Retry-After"))
			}
			if entry.Scope == apierror.ScopeSeries {
				// The listed line of the series carries the ID too.
				require.Contains(t, msg, "\n"+string(c.id)+": ")
			}
			require.Equal(t, http.StatusOK, c.target.ReadyStatus(t), "the process must still serve")
		})
	}
	for _, e := range apierror.Catalogue {
		_, skipped := notTriggerable[e.ID]
		require.True(t, seen[e.ID] != skipped, "%s must be triggered here or listed in notTriggerable, not both or neither", e.ID)
	}
}

// TestErrorContract_PartialAcceptance checks that the valid series of a push
// with invalid ones are stored, and that every refused sample is counted
// under its reason, with every reason present at zero for the tenant.
func TestErrorContract_PartialAcceptance(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-validation.max-length-label-value=10"}})
	now := time.Now().Truncate(time.Second).UnixMilli()
	code, body := a.Push(t, "t1", []clustertest.TimeSeries{
		{Labels: clustertest.Labels("__name__", "ok", "i", "1"), Samples: []clustertest.Sample{{T: now, V: 1}}},
		{Labels: clustertest.Labels("__name__", "ok", "i", "long-value-here"), Samples: []clustertest.Sample{{T: now, V: 2}, {T: now + 1, V: 3}}},
		{Labels: clustertest.Labels("job", "nameless"), Samples: []clustertest.Sample{{T: now, V: 4}}},
		{Labels: clustertest.Labels("__name__", "ok", "i", "2"), Samples: []clustertest.Sample{{T: now, V: 5}}},
	})
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, `err-argus-label-value-too-long: tenant "t1": 2 series (3 samples) rejected, 2 samples accepted
err-argus-label-value-too-long: {__name__="ok", i="long-value-here"}: label value too long: the value of label "i" is 15 bytes long, over -validation.max-length-label-value=10
err-argus-missing-metric-name: {job="nameless"}: missing metric name: the series has no __name__ label, or an empty one
`, body)
	got := rawSamples(t, a, "t1", "ok", now, time.Minute)
	require.Len(t, got, 2)
	require.Equal(t, map[string]string{"__name__": "ok", "i": "1"}, got[0].Metric)
	require.Equal(t, map[string]string{"__name__": "ok", "i": "2"}, got[1].Metric)

	fams := a.MetricFamilies(t)
	reasons := map[string]float64{}
	for _, m := range fams["argus_discarded_samples_total"].GetMetric() {
		lbls := map[string]string{}
		for _, l := range m.GetLabel() {
			lbls[l.GetName()] = l.GetValue()
		}
		if lbls["tenant"] == "t1" {
			reasons[lbls["reason"]] = m.GetCounter().GetValue()
		}
	}
	require.Equal(t, 2.0, reasons["label_value_too_long"])
	require.Equal(t, 1.0, reasons["missing_metric_name"])
	for _, r := range []string{"rate_limited", "per_user_series_limit", "per_metric_series_limit", "too_old", "out_of_order", "too_far_in_future", "max_label_names_per_series", "label_name_too_long"} {
		v, ok := reasons[r]
		require.True(t, ok, "reason %s must exist at zero", r)
		require.Zero(t, v, r)
	}
}

// send sends one request with the remote-write headers (and header on top;
// "" deletes one) and returns the status, body and response headers.
func send(t *testing.T, p *clustertest.Process, method, path, tenant string, header map[string]string, body []byte) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, p.URL()+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	if tenant != "" {
		req.Header.Set(clustertest.TenantHeader, tenant)
	}
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b.String(), resp.Header
}
