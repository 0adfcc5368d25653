package scraper

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"time"

	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/scraper/monitors"
)

// DefaultTenant is the tenant of scraped samples when neither
// -scraper.tenant nor a __tenant__ target label names one: the tenant
// every request belongs to with -auth.multitenancy-enabled=false, as in Mimir.
const DefaultTenant = "anonymous"

// TenantLabel is the target label, set by relabelling, that names the
// tenant of a target's samples. Like every label starting with "__" it is
// not stored.
const TenantLabel = "__tenant__"

// Config configures the scraper role.
type Config struct {
	ConfigFile       string          `yaml:"config_file"`
	Tenant           string          `yaml:"tenant"`
	RemoteWriteURL   string          `yaml:"remote_write_url"`
	RemoteTimeout    time.Duration   `yaml:"remote_timeout" category:"advanced"`
	WALDir           string          `yaml:"wal_dir"`
	WALMaxBytes      int64           `yaml:"wal_max_bytes" category:"advanced"`
	MembershipPeriod time.Duration   `yaml:"membership_check_period" category:"advanced"`
	Monitors         monitors.Config `yaml:"monitors"`
}

// RegisterFlags registers the flags of c under -scraper.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.ConfigFile, "scraper.config-file", "", "Prometheus configuration file (prometheus.yml: global, scrape_configs and their service discovery) of the scraper role. -target=all runs a scraper only when it is set.")
	f.StringVar(&c.Tenant, "scraper.tenant", DefaultTenant, "Tenant of the scraped samples, unless relabelling sets the target label __tenant__.")
	f.StringVar(&c.RemoteWriteURL, "scraper.remote-write-url", "", "Remote-write URL the scraper pushes to (any Prometheus remote-write 1.0 receiver, such as an Argus distributor's /api/v1/push). Empty pushes to the distributor of this process, which must then run one.")
	f.DurationVar(&c.RemoteTimeout, "scraper.remote-timeout", 30*time.Second, "Timeout of one push to -scraper.remote-write-url.")
	f.StringVar(&c.WALDir, "scraper.wal-dir", "", "Directory of the write-ahead log that queues the pushes to -scraper.remote-write-url, as Prometheus's agent does: they are sent in order and retried while the receiver is unreachable or answers 5xx or 429, and what a stopped or killed process left unsent is sent at its next start. Empty pushes each scrape once, without a queue.")
	f.Int64Var(&c.WALMaxBytes, "scraper.wal-max-bytes", 1<<30, "Bound of the unsent bytes in -scraper.wal-dir; beyond it the oldest are dropped.")
	f.DurationVar(&c.MembershipPeriod, "scraper.membership-check-period", time.Second, "How often the scraper checks the alive scrapers of the gossip cluster, to take over or give up targets.")
	c.Monitors.RegisterFlags(f)
}

// Validate reports an invalid configuration.
func (c *Config) Validate() error {
	if c.ConfigFile == "" {
		return errors.New("-scraper.config-file is required by the scraper role")
	}
	if err := tenant.Validate(c.Tenant); err != nil {
		return fmt.Errorf("-scraper.tenant: %w", err)
	}
	if c.RemoteWriteURL != "" {
		u, err := url.Parse(c.RemoteWriteURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("-scraper.remote-write-url %q is not an http(s) URL", c.RemoteWriteURL)
		}
	}
	if c.WALDir != "" && c.RemoteWriteURL == "" {
		return errors.New("-scraper.wal-dir needs -scraper.remote-write-url (pushes to the distributor of this process are written ahead by the ingester)")
	}
	if c.WALDir != "" && c.WALMaxBytes <= 0 {
		return errors.New("-scraper.wal-max-bytes must be positive")
	}
	if c.RemoteTimeout <= 0 || c.MembershipPeriod <= 0 {
		return errors.New("-scraper.remote-timeout and -scraper.membership-check-period must be positive")
	}
	return c.Monitors.Validate()
}
