package ring

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// dnsPrefix marks a -memberlist.join address whose name is looked up anew on
// every join, and each of whose addresses is joined: the A/AAAA records of a
// Kubernetes headless Service, one per pod (Mimir's and Thanos's notation).
// A plain name is handed to memberlist as it is.
const dnsPrefix = "dns+"

// lookupHostFunc resolves a name to IP addresses, as net.Resolver.LookupHost.
type lookupHostFunc func(ctx context.Context, host string) ([]string, error)

// validateJoinAddr refuses a join address with a lookup prefix other than
// dns+ (dnssrv+ and dnssrvnoa+ of Mimir are not supported), or a dns+ address
// without a name.
func validateJoinAddr(addr string) error {
	if rest, ok := strings.CutPrefix(addr, dnsPrefix); ok {
		if host, _ := splitJoinAddr(rest); host == "" {
			return fmt.Errorf("memberlist: join address %q has no name after %s", addr, dnsPrefix)
		}
		return nil
	}
	if prefix, _, ok := strings.Cut(addr, "+"); ok && !strings.ContainsAny(prefix, ".:[") {
		return fmt.Errorf("memberlist: join address %q: lookup %q not supported (only %s)", addr, prefix+"+", dnsPrefix)
	}
	return nil
}

// splitJoinAddr splits host[:port]; port is "" when absent.
func splitJoinAddr(addr string) (host, port string) {
	if h, p, err := net.SplitHostPort(addr); err == nil {
		return h, p
	}
	return strings.Trim(addr, "[]"), ""
}

// resolveJoinAddrs expands every dns+name[:port] of addrs into ip:port, one
// per address name resolves to (defaultPort when the port is absent), and
// keeps the other addresses as they are. A name that does not resolve is
// left out and its error returned joined with the others', so that the
// caller can join the rest and say why some are missing; the result is empty
// only when nothing is left to join. It blocks on DNS, bounded by ctx.
func resolveJoinAddrs(ctx context.Context, addrs []string, defaultPort int, lookup lookupHostFunc) ([]string, error) {
	var out []string
	var errs []error
	for _, a := range addrs {
		rest, ok := strings.CutPrefix(a, dnsPrefix)
		if !ok {
			out = append(out, a)
			continue
		}
		host, port := splitJoinAddr(rest)
		if port == "" {
			port = strconv.Itoa(defaultPort)
		}
		ips, err := lookup(ctx, host)
		if err == nil && len(ips) == 0 {
			err = errors.New("no addresses")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("look up join address %s: %w", a, err))
			continue
		}
		for _, ip := range ips {
			out = append(out, net.JoinHostPort(ip, port))
		}
	}
	return out, errors.Join(errs...)
}
