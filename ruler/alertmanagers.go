package ruler

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/discovery/targetgroup"
)

// The lookup prefixes of -ruler.alertmanager-url, as Mimir spells them:
// dns+ looks the host up (A/AAAA) and keeps the URL's port; dnssrv+ looks
// the host up as an SRV name, whose records give hosts and ports.
const (
	dnsPrefix    = "dns+"
	dnsSRVPrefix = "dnssrv+"
)

// amURL is one entry of an Alertmanager URL list: a static URL, or one
// whose host is looked up anew every refresh.
type amURL struct {
	raw    string   // as configured, the target group's source
	lookup string   // "", "dns" or "dnssrv"
	u      *url.URL // without the prefix
}

// parseAMURLs parses a comma-separated Alertmanager URL list.
func parseAMURLs(list string) ([]amURL, error) {
	var out []amURL
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		a := amURL{raw: s}
		rest := s
		if r, ok := strings.CutPrefix(s, dnsSRVPrefix); ok {
			a.lookup, rest = "dnssrv", r
		} else if r, ok := strings.CutPrefix(s, dnsPrefix); ok {
			a.lookup, rest = "dns", r
		} else if i := strings.Index(s, "+"); i > 0 && i < strings.Index(s, "://") {
			return nil, fmt.Errorf("%q: lookup %q not supported (only %s and %s)", s, s[:i+1], dnsPrefix, dnsSRVPrefix)
		}
		if err := checkHTTPURL(rest); err != nil {
			return nil, err
		}
		a.u, _ = url.Parse(rest)
		out = append(out, a)
	}
	return out, nil
}

// resolve returns the host:port addresses of a, sorted. A static URL is its
// own host.
func (a amURL) resolve(ctx context.Context, r *net.Resolver) ([]string, error) {
	var addrs []string
	switch a.lookup {
	case "":
		return []string{a.u.Host}, nil
	case "dnssrv":
		_, srvs, err := r.LookupSRV(ctx, "", "", a.u.Hostname())
		if err != nil {
			return nil, err
		}
		for _, s := range srvs {
			addrs = append(addrs, net.JoinHostPort(strings.TrimSuffix(s.Target, "."), strconv.Itoa(int(s.Port))))
		}
	default:
		ips, err := r.LookupHost(ctx, a.u.Hostname())
		if err != nil {
			return nil, err
		}
		for _, ip := range ips {
			if p := a.u.Port(); p != "" {
				addrs = append(addrs, net.JoinHostPort(ip, p))
			} else {
				addrs = append(addrs, ip) // the notifier adds the scheme's port
			}
		}
	}
	slices.Sort(addrs)
	return slices.Compact(addrs), nil
}

// discoverAlertmanagers sends the notifier the target groups of urls (one
// per URL, named config-i as notifier's ToMap names the i-th
// AlertmanagerConfig) at once and again whenever a refresh, every
// interval, changes them, until ctx ends. It uses Go's resolver (the
// system's, /etc/hosts included), as Mimir's DNS discovery of
// Alertmanagers does, rather than Prometheus's dns_sd_configs, which
// queries the resolv.conf servers directly. A failed lookup keeps the
// URL's last addresses.
func discoverAlertmanagers(ctx context.Context, urls []amURL, interval time.Duration, ch chan<- map[string][]*targetgroup.Group, logger *slog.Logger) {
	var last map[string][]*targetgroup.Group
	prev := make([][]string, len(urls))
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		tsets := make(map[string][]*targetgroup.Group, len(urls))
		for i, a := range urls {
			addrs, err := a.resolve(ctx, net.DefaultResolver)
			if err != nil {
				logger.Warn("cannot look up the alertmanager; keeping its last addresses", "url", a.raw, "err", err)
				addrs = prev[i]
			}
			prev[i] = addrs
			g := &targetgroup.Group{Source: a.raw}
			for _, addr := range addrs {
				g.Targets = append(g.Targets, model.LabelSet{model.AddressLabel: model.LabelValue(addr)})
			}
			tsets["config-"+strconv.Itoa(i)] = []*targetgroup.Group{g}
		}
		if !reflect.DeepEqual(tsets, last) {
			select {
			case ch <- tsets:
				last = tsets
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
