package clustertest

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// PrometheusOptions configures one real Prometheus server.
type PrometheusOptions struct {
	// ScrapeInterval is the global scrape and evaluation interval; zero
	// means 1s. The scrape timeout equals it.
	ScrapeInterval time.Duration
	// ScrapeTargets maps job names to one host:port target each, scraped
	// besides Prometheus itself (job "prometheus").
	ScrapeTargets map[string]string
	// RemoteWrite, when not nil, is where Prometheus remote-writes
	// (remote-write 1.0) everything it appends.
	RemoteWrite *RemoteWrite
	// RemoteWrites are more destinations, each with its own queue (after
	// RemoteWrite, if set).
	RemoteWrites []RemoteWrite
	// Flags are extra command-line flags.
	Flags []string
	// DataDir is the --storage.tsdb.path; empty means a new temporary
	// directory. Blocks put there before the start are Prometheus's
	// history (backfilling).
	DataDir string
	// NoSelfScrape leaves out the job that scrapes Prometheus itself, for
	// a server fed by remote write only (its head would otherwise start at
	// the wall clock and refuse older pushed samples).
	NoSelfScrape bool
	// ConfigYAML, when set, is the whole prometheus.yml, and every option
	// above that shapes it is ignored.
	ConfigYAML string
}

// RemoteWrite is a remote-write destination.
type RemoteWrite struct {
	// URL is the push endpoint, e.g. Process.PushURL().
	URL string
	// Tenant is sent as X-Scope-OrgID; empty sends no header.
	Tenant string
	// BearerToken, if set, is sent as Authorization: Bearer.
	BearerToken string
	// RetryOnRateLimit sets queue_config.retry_on_http_429: Prometheus
	// retries 429 answers (after Retry-After) instead of dropping the batch.
	RetryOnRateLimit bool
	// Name is the remote_name in Prometheus's remote storage metrics; empty
	// lets Prometheus derive one.
	Name string
}

// Prometheus is a running real Prometheus server.
type Prometheus struct {
	proc    *process
	port    int
	dataDir string
	client  *httpClient
	// ReadyAt is when /-/ready first answered 200.
	ReadyAt time.Time
}

// PrometheusBinary returns PROMETHEUS_BIN. When it is unset or absent the
// test is skipped loudly, or fails under CI=true so that CI never skips.
func PrometheusBinary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("PROMETHEUS_BIN")
	msg := ""
	if bin == "" {
		msg = "PROMETHEUS_BIN not set"
	} else if _, err := os.Stat(bin); err != nil {
		msg = fmt.Sprintf("PROMETHEUS_BIN absent (%v)", err)
	}
	if msg == "" {
		return bin
	}
	msg = "!!!!!!!! " + msg + ": run .ci/run or scripts/install-tools.sh !!!!!!!! (this test needs the real Prometheus server)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: refusing to skip)")
	}
	t.Skip(msg)
	return ""
}

// StartPrometheus writes a prometheus.yml, starts the real Prometheus with
// its TSDB in a temporary directory on a free 127.0.0.1 port and waits for
// /-/ready. It is killed at the end of the test.
func StartPrometheus(t testing.TB, opts PrometheusOptions) *Prometheus {
	t.Helper()
	bin := PrometheusBinary(t)
	if opts.ScrapeInterval <= 0 {
		opts.ScrapeInterval = time.Second
	}
	dir := t.TempDir()
	p := &Prometheus{port: FreePorts(t, 1)[0], dataDir: opts.DataDir, client: newHTTPClient()}
	if p.dataDir == "" {
		p.dataDir = filepath.Join(dir, "data")
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	cfg := opts.ConfigYAML
	if cfg == "" {
		cfg = prometheusConfig(p.HostPort(), opts)
	}
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o644))
	args := []string{
		"--config.file=" + cfgPath,
		"--storage.tsdb.path=" + p.dataDir,
		"--web.listen-address=" + p.HostPort(),
		"--log.level=info",
	}
	args = append(args, opts.Flags...)
	p.proc = newProcess(t, "prometheus", bin, args, p.URL()+"/-/ready")
	p.proc.start(t, 0)
	p.ReadyAt = time.Now()
	return p
}

// prometheusConfig renders prometheus.yml. YAML is written by hand: every
// value is a number, a duration or a quoted string.
func prometheusConfig(self string, opts PrometheusOptions) string {
	iv := promDuration(opts.ScrapeInterval)
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: %s\n", iv, iv, iv)
	if len(opts.ScrapeTargets) == 0 && opts.NoSelfScrape {
		b.WriteString("scrape_configs: []\n")
	} else {
		b.WriteString("scrape_configs:\n")
	}
	jobs := map[string]string{"prometheus": self}
	if opts.NoSelfScrape {
		delete(jobs, "prometheus")
	}
	for job, target := range opts.ScrapeTargets {
		jobs[job] = target
	}
	names := make([]string, 0, len(jobs))
	for n := range jobs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, job := range names {
		fmt.Fprintf(&b, "  - job_name: %s\n    static_configs:\n      - targets: [%s]\n", strconv.Quote(job), strconv.Quote(jobs[job]))
	}
	var rws []RemoteWrite
	if opts.RemoteWrite != nil {
		rws = append(rws, *opts.RemoteWrite)
	}
	rws = append(rws, opts.RemoteWrites...)
	if len(rws) > 0 {
		b.WriteString("remote_write:\n")
	}
	for _, rw := range rws {
		fmt.Fprintf(&b, "  - url: %s\n", strconv.Quote(rw.URL))
		if rw.Name != "" {
			fmt.Fprintf(&b, "    name: %s\n", strconv.Quote(rw.Name))
		}
		if rw.Tenant != "" {
			fmt.Fprintf(&b, "    headers:\n      %s: %s\n", TenantHeader, strconv.Quote(rw.Tenant))
		}
		if rw.BearerToken != "" {
			fmt.Fprintf(&b, "    authorization:\n      credentials: %s\n", strconv.Quote(rw.BearerToken))
		}
		// Small batches and deadlines so that samples arrive within about a
		// second; short backoffs so that a transient error does not stall.
		b.WriteString("    queue_config:\n      batch_send_deadline: 1s\n      max_samples_per_send: 2000\n      min_backoff: 50ms\n      max_backoff: 1s\n")
		if rw.RetryOnRateLimit {
			b.WriteString("      retry_on_http_429: true\n")
		}
	}
	return b.String()
}

// promDuration formats a duration in Prometheus's duration syntax (ms precision).
func promDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// URL is the base URL, e.g. http://127.0.0.1:9090.
func (p *Prometheus) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", p.port) }

// DataDir is the --storage.tsdb.path.
func (p *Prometheus) DataDir() string { return p.dataDir }

// PID is the process ID.
func (p *Prometheus) PID() int { return p.proc.pid() }

// HostPort is the listen address, e.g. 127.0.0.1:9090.
func (p *Prometheus) HostPort() string { return fmt.Sprintf("127.0.0.1:%d", p.port) }

// Query sends GET path?params (path from the root, e.g. "/api/v1/query").
func (p *Prometheus) Query(t testing.TB, path string, params url.Values) (status int, body []byte) {
	t.Helper()
	return p.client.get(t, p.URL()+path, "", params)
}

// QueryPost sends POST path with form as a urlencoded body.
func (p *Prometheus) QueryPost(t testing.TB, path string, form url.Values) (status int, body []byte) {
	t.Helper()
	return p.client.postForm(t, p.URL()+path, "", form)
}

// Metric reads Prometheus's own /metrics like Process.Metric.
func (p *Prometheus) Metric(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	return sumMetric(scrapeFamilies(t, p.client, p.URL()+"/metrics"), name, labels)
}

// Stop sends SIGTERM and requires exit status 0.
func (p *Prometheus) Stop(t testing.TB) {
	t.Helper()
	p.proc.stop(t)
}

// LogTail prints the end of the Prometheus log to the test log.
func (p *Prometheus) LogTail(t testing.TB) {
	t.Helper()
	p.proc.logTail(t)
}

// Log returns everything the Prometheus process logged so far.
func (p *Prometheus) Log(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(p.proc.logPath)
	require.NoError(t, err)
	return string(b)
}
