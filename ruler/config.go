package ruler

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"time"

	"github.com/prometheus/common/model"
)

// Role is the role name rulers gossip in their memberlist metadata: the
// members that share the rule groups.
const Role = "ruler"

// Config configures the ruler role. Flag names follow Mimir's where it has
// one.
type Config struct {
	// StoragePath is the directory of the rule store; empty means "rules"
	// under -storage.path (cmd fills it in).
	StoragePath string `yaml:"storage_path"`
	// RulePath is a directory of rule files imported at start:
	// <tenant>/<namespace>.yaml (or .yml), each a Prometheus rule file.
	RulePath        string `yaml:"rule_path"`
	AlertmanagerURL string `yaml:"alertmanager_url"`
	// AlertmanagerRefreshInterval is how often dns+ and dnssrv+ names of
	// AlertmanagerURL are looked up again.
	AlertmanagerRefreshInterval time.Duration `yaml:"alertmanager_refresh_interval" category:"advanced"`
	// TenantLabel, if set, is the label that carries the tenant in every
	// alert sent (unless the alert has it already).
	TenantLabel    string        `yaml:"tenant_label"`
	ExternalURL    string        `yaml:"external_url"`
	RemoteWriteURL string        `yaml:"remote_write_url"`
	RemoteTimeout  time.Duration `yaml:"remote_timeout" category:"advanced"`
	// EvaluationInterval is the interval of a group that names none.
	EvaluationInterval time.Duration `yaml:"evaluation_interval"`
	// PollInterval is how often the ruler checks the alive rulers and the
	// store, to take over or give up groups.
	PollInterval              time.Duration `yaml:"poll_interval" category:"advanced"`
	ResendDelay               time.Duration `yaml:"resend_delay" category:"advanced"`
	ForOutageTolerance        time.Duration `yaml:"for_outage_tolerance" category:"advanced"`
	ForGracePeriod            time.Duration `yaml:"for_grace_period" category:"advanced"`
	NotificationQueueCapacity int           `yaml:"notification_queue_capacity" category:"advanced"`
	NotificationTimeout       time.Duration `yaml:"notification_timeout" category:"advanced"`
	QueryTimeout              time.Duration `yaml:"query_timeout" category:"advanced"`
	MaxSamples                int           `yaml:"max_samples" category:"advanced"`
	LookbackDelta             time.Duration `yaml:"lookback_delta" category:"advanced"`
}

// RegisterFlags registers the flags of c under -ruler. The defaults set
// here are the only defaults.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.StoragePath, "ruler.storage-path", "", "Directory where the ruler stores the rule groups uploaded through /prometheus/config/v1/rules, one file per tenant and namespace. Empty means the directory rules under -storage.path.")
	f.StringVar(&c.RulePath, "ruler.rule-path", "", "Directory of Prometheus rule files imported into the rule store at start, laid out as <tenant>/<namespace>.yaml; each file replaces that namespace. A bad file stops the start.")
	f.StringVar(&c.AlertmanagerURL, "ruler.alertmanager-url", "", "Comma-separated URLs of the Alertmanagers the ruler sends alerts to (every one gets every alert, as Prometheus does), with the tenant in X-Scope-OrgID. A path is the Alertmanager's prefix (http://am:9093/alertmanager). A URL prefixed dns+ (dns+http://am.svc:9093) sends to every address its host resolves to; dnssrv+ (dnssrv+http://_http._tcp.am.svc) to every host and port of the SRV records; both are looked up again every -ruler.alertmanager-refresh-interval. Empty sends no alerts.")
	f.DurationVar(&c.AlertmanagerRefreshInterval, "ruler.alertmanager-refresh-interval", time.Minute, "How often the dns+ and dnssrv+ names of -ruler.alertmanager-url are looked up again.")
	f.StringVar(&c.TenantLabel, "ruler.tenant-label", "", "Label name that carries the tenant in every alert sent to Alertmanager, unless the alert has that label already. Empty adds none; X-Scope-OrgID is always sent.")
	f.StringVar(&c.ExternalURL, "ruler.external.url", "", "URL of this Argus as users reach it, the generatorURL of the alerts it sends (Prometheus's --web.external-url).")
	f.StringVar(&c.RemoteWriteURL, "ruler.remote-write-url", "", "Remote-write URL the ruler writes recording-rule results and ALERTS series to (an Argus distributor's /api/v1/push). Empty writes through the distributor of this process, which must then run one.")
	f.DurationVar(&c.RemoteTimeout, "ruler.remote-timeout", 30*time.Second, "Timeout of one write to -ruler.remote-write-url.")
	f.DurationVar(&c.EvaluationInterval, "ruler.evaluation-interval", time.Minute, "Evaluation interval of a rule group that does not set interval.")
	f.DurationVar(&c.PollInterval, "ruler.poll-interval", time.Second, "How often the ruler checks the alive rulers of the gossip cluster and the rule store, to take over or give up rule groups.")
	f.DurationVar(&c.ResendDelay, "ruler.resend-delay", time.Minute, "Minimum time before a still-firing alert is sent to Alertmanager again.")
	f.DurationVar(&c.ForOutageTolerance, "ruler.for-outage-tolerance", time.Hour, "Longest ruler outage after which the for: state of alerts is not restored from ALERTS_FOR_STATE.")
	f.DurationVar(&c.ForGracePeriod, "ruler.for-grace-period", 10*time.Minute, "Minimum time an alert whose for: state was restored waits before firing, if its for: is at least that long.")
	f.IntVar(&c.NotificationQueueCapacity, "ruler.notification-queue-capacity", 10000, "Alerts queued per tenant for Alertmanager; the oldest are dropped beyond it.")
	f.DurationVar(&c.NotificationTimeout, "ruler.notification-timeout", 10*time.Second, "Timeout of one request to an Alertmanager.")
	f.DurationVar(&c.QueryTimeout, "ruler.query-timeout", 2*time.Minute, "Timeout of one rule's query.")
	f.IntVar(&c.MaxSamples, "ruler.max-samples", 50000000, "Maximum number of samples one rule's query can load into memory.")
	f.DurationVar(&c.LookbackDelta, "ruler.lookback-delta", 5*time.Minute, "How far back an instant vector selector of a rule looks for the latest sample of a series.")
}

// Validate reports every invalid field, joined.
func (c *Config) Validate() error {
	var errs []error
	if _, err := parseAMURLs(c.AlertmanagerURL); err != nil {
		errs = append(errs, fmt.Errorf("-ruler.alertmanager-url: %w", err))
	}
	if c.TenantLabel != "" && !model.LabelName(c.TenantLabel).IsValid() {
		errs = append(errs, fmt.Errorf("-ruler.tenant-label: %q is not a valid label name", c.TenantLabel))
	}
	if c.RemoteWriteURL != "" {
		if err := checkHTTPURL(c.RemoteWriteURL); err != nil {
			errs = append(errs, fmt.Errorf("-ruler.remote-write-url: %w", err))
		}
	}
	if c.ExternalURL != "" {
		if _, err := url.Parse(c.ExternalURL); err != nil {
			errs = append(errs, fmt.Errorf("-ruler.external.url: %w", err))
		}
	}
	for name, d := range map[string]time.Duration{
		"evaluation-interval": c.EvaluationInterval, "poll-interval": c.PollInterval,
		"remote-timeout": c.RemoteTimeout, "alertmanager-refresh-interval": c.AlertmanagerRefreshInterval, "notification-timeout": c.NotificationTimeout,
		"query-timeout": c.QueryTimeout, "lookback-delta": c.LookbackDelta,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("-ruler.%s must be positive, got %s", name, d))
		}
	}
	if c.NotificationQueueCapacity <= 0 || c.MaxSamples <= 0 {
		errs = append(errs, errors.New("-ruler.notification-queue-capacity and -ruler.max-samples must be positive"))
	}
	return errors.Join(errs...)
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}
