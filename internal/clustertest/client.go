package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// TenantHeader is the HTTP header that names the tenant.
const TenantHeader = "X-Scope-OrgID"

// Label is one label pair. Labels are kept as an ordered slice, not a map, so
// that tests can send invalid label sets (duplicates, unsorted).
type Label struct {
	Name, Value string
}

// Sample is one float sample; T is in Unix milliseconds.
type Sample struct {
	T int64
	V float64
}

// TimeSeries is one series of a remote-write request.
type TimeSeries struct {
	Labels  []Label
	Samples []Sample
}

// Labels builds a label slice from name, value pairs in the given order.
func Labels(nameValues ...string) []Label {
	if len(nameValues)%2 != 0 {
		panic("clustertest.Labels: odd number of arguments")
	}
	ls := make([]Label, 0, len(nameValues)/2)
	for i := 0; i < len(nameValues); i += 2 {
		ls = append(ls, Label{Name: nameValues[i], Value: nameValues[i+1]})
	}
	return ls
}

// MarshalWriteRequest encodes series as a remote-write 1.0 protobuf
// WriteRequest, not yet snappy-compressed.
func MarshalWriteRequest(t testing.TB, series []TimeSeries) []byte {
	t.Helper()
	b, err := marshalWriteRequest(series)
	require.NoError(t, err)
	return b
}

func marshalWriteRequest(series []TimeSeries) ([]byte, error) {
	req := &arguspb.WriteRequest{Timeseries: make([]*arguspb.TimeSeries, 0, len(series))}
	for _, s := range series {
		ts := &arguspb.TimeSeries{
			Labels:  make([]*arguspb.Label, 0, len(s.Labels)),
			Samples: make([]*arguspb.Sample, 0, len(s.Samples)),
		}
		for _, l := range s.Labels {
			ts.Labels = append(ts.Labels, &arguspb.Label{Name: l.Name, Value: l.Value})
		}
		for _, smp := range s.Samples {
			ts.Samples = append(ts.Samples, &arguspb.Sample{Value: smp.V, TimestampMs: smp.T})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	return req.MarshalVT()
}

// EncodeWriteRequest returns the body of a remote-write 1.0 push of series:
// a snappy block-compressed protobuf WriteRequest.
func EncodeWriteRequest(t testing.TB, series []TimeSeries) []byte {
	t.Helper()
	return snappy.Encode(nil, MarshalWriteRequest(t, series))
}

// httpClient is shared by the helpers of one process.
type httpClient struct {
	c *http.Client
	// argus is set for an argus process: every answer that is not a 2xx
	// must start with an error ID (checkErrorID).
	argus bool
}

func newHTTPClient() *httpClient {
	return &httpClient{c: &http.Client{Timeout: 60 * time.Second}}
}

// newArgusHTTPClient is the client of an argus process.
func newArgusHTTPClient() *httpClient {
	c := newHTTPClient()
	c.argus = true
	return c
}

// do sends req and returns the status and the whole body.
func (c *httpClient) do(t testing.TB, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := c.c.Do(req)
	require.NoError(t, err, "%s %s", req.Method, req.URL)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "read body of %s %s", req.Method, req.URL)
	if c.argus {
		checkErrorID(t, req, resp, body)
	}
	return resp.StatusCode, body
}

func (c *httpClient) get(t testing.TB, rawURL, tenant string, params url.Values) (int, []byte) {
	t.Helper()
	if len(params) > 0 {
		rawURL += "?" + params.Encode()
	}
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	require.NoError(t, err)
	if tenant != "" {
		req.Header.Set(TenantHeader, tenant)
	}
	return c.do(t, req)
}

func (c *httpClient) postForm(t testing.TB, rawURL, tenant string, form url.Values) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if tenant != "" {
		req.Header.Set(TenantHeader, tenant)
	}
	return c.do(t, req)
}

// Push sends series as one remote-write 1.0 request for tenant (no
// X-Scope-OrgID header when tenant is empty) and returns the HTTP status and
// body.
func (p *Process) Push(t testing.TB, tenant string, series []TimeSeries) (status int, body string) {
	t.Helper()
	return p.PushBody(t, tenant, EncodeWriteRequest(t, series))
}

// PushBody sends body as is to /api/v1/push with the remote-write 1.0
// headers, for tests of malformed requests.
func (p *Process) PushBody(t testing.TB, tenant string, body []byte) (status int, respBody string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.PushURL(), bytes.NewReader(body))
	require.NoError(t, err)
	setRemoteWriteHeaders(req, tenant)
	code, b := p.client.do(t, req)
	return code, string(b)
}

func setRemoteWriteHeaders(req *http.Request, tenant string) {
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set("User-Agent", "argus-clustertest")
	if tenant != "" {
		req.Header.Set(TenantHeader, tenant)
	}
}

// TryPush is Push for goroutines other than the test's own: it never fails
// the test and returns transport errors, which are expected while the
// process is being killed. It is safe for concurrent use.
func (p *Process) TryPush(ctx context.Context, tenant string, series []TimeSeries) (status int, body string, err error) {
	raw, err := marshalWriteRequest(series)
	if err != nil {
		return 0, "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.PushURL(), bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		return 0, "", err
	}
	setRemoteWriteHeaders(req, tenant)
	resp, err := p.client.c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// Query sends GET path?params (path from the root, e.g.
// "/prometheus/api/v1/query") for tenant (no header when empty).
func (p *Process) Query(t testing.TB, tenant, path string, params url.Values) (status int, body []byte) {
	t.Helper()
	return p.client.get(t, p.URL()+path, tenant, params)
}

// QueryPost sends POST path with form as an application/x-www-form-urlencoded
// body, as Grafana does.
func (p *Process) QueryPost(t testing.TB, tenant, path string, form url.Values) (status int, body []byte) {
	t.Helper()
	return p.client.postForm(t, p.URL()+path, tenant, form)
}

// Do sends an arbitrary request (its URL must be absolute, see URL).
func (p *Process) Do(t testing.TB, req *http.Request) (status int, body []byte) {
	t.Helper()
	return p.client.do(t, req)
}

// ReadyStatus returns the status of GET /ready.
func (p *Process) ReadyStatus(t testing.TB) int {
	t.Helper()
	code, _ := p.client.get(t, p.URL()+"/ready", "", nil)
	return code
}

// CPUProfile writes to path a CPU profile of the process over the next
// secs seconds, from /debug/pprof/profile: the process must run with
// -server.register-instrumentation=true. It blocks for those seconds, and is
// safe to call from any goroutine (it does not fail the test).
func (p *Process) CPUProfile(secs int, path string) error {
	c := &http.Client{Timeout: time.Duration(secs+30) * time.Second}
	resp, err := c.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", p.URL(), secs))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile of %s: status %d", p.URL(), resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// MetricFamilies reads and parses GET /metrics.
func (p *Process) MetricFamilies(t testing.TB) map[string]*dto.MetricFamily {
	t.Helper()
	return scrapeFamilies(t, p.client, p.URL()+"/metrics")
}

// Metric returns the sum of the samples of metric family name in GET
// /metrics whose labels include all of labels (nil matches every series).
// Counters, gauges and untyped metrics are read by their name; for
// histograms and summaries, name may end in _count or _sum. A family that is
// absent, or has no matching series, reads as 0: a counter vector with a
// tenant label has no series until its first increment.
func (p *Process) Metric(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	return sumMetric(p.MetricFamilies(t), name, labels)
}

func scrapeFamilies(t testing.TB, c *httpClient, rawURL string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	require.NoError(t, err)
	// Ask for the text format so that expfmt's text parser applies.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	code, body := c.do(t, req)
	require.Equal(t, http.StatusOK, code, "GET %s: %s", rawURL, body)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	require.NoError(t, err, "parse %s", rawURL)
	return fams
}

// SumMetric is Metric over families already scraped (MetricFamilies), to
// read several metrics of one scrape.
func SumMetric(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	return sumMetric(fams, name, labels)
}

func sumMetric(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	base, suffix := name, ""
	if _, ok := fams[name]; !ok {
		for _, s := range []string{"_count", "_sum"} {
			if strings.HasSuffix(name, s) {
				base, suffix = strings.TrimSuffix(name, s), s
			}
		}
	}
	fam, ok := fams[base]
	if !ok {
		return 0
	}
	var sum float64
	for _, m := range fam.GetMetric() {
		if !labelsMatch(m.GetLabel(), want) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		case m.Histogram != nil && suffix == "_count":
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.Histogram != nil && suffix == "_sum":
			sum += m.GetHistogram().GetSampleSum()
		case m.Summary != nil && suffix == "_count":
			sum += float64(m.GetSummary().GetSampleCount())
		case m.Summary != nil && suffix == "_sum":
			sum += m.GetSummary().GetSampleSum()
		}
	}
	return sum
}

func labelsMatch(have []*dto.LabelPair, want map[string]string) bool {
	for name, value := range want {
		found := false
		for _, lp := range have {
			if lp.GetName() == name {
				found = lp.GetValue() == value
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// MetricNames lists the family names in fams, sorted, for failure messages.
func MetricNames(fams map[string]*dto.MetricFamily) []string {
	names := make([]string, 0, len(fams))
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// PostRemoteWrite sends body, a snappy-compressed remote-write 1.0 request,
// to url with header (a tenant header, or none for servers without
// tenants) and the remote-write 1.0 headers, and returns an error for a
// transport failure or any answer but 2xx. It is for load generators that
// must not fail the test from their goroutines, and is safe for concurrent
// use.
func PostRemoteWrite(ctx context.Context, client *http.Client, url string, header http.Header, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	setRemoteWriteHeaders(req, "")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("push to %s: %w", url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2000))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("push to %s: status %d: %s", url, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}
