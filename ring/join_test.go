package ring

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestResolveJoinAddrs(t *testing.T) {
	lookup := func(_ context.Context, host string) ([]string, error) {
		switch host {
		case "argus-gossip":
			return []string{"10.0.0.1", "10.0.0.2", "fd00::3"}, nil
		case "empty":
			return nil, nil
		}
		return nil, errors.New("no such host")
	}
	got, err := resolveJoinAddrs(context.Background(),
		[]string{"dns+argus-gossip:7000", "plain.example:7946", "dns+argus-gossip", "10.1.1.1:1"}, 7946, lookup)
	require.NoError(t, err)
	require.Equal(t, []string{
		"10.0.0.1:7000", "10.0.0.2:7000", "[fd00::3]:7000",
		"plain.example:7946",
		"10.0.0.1:7946", "10.0.0.2:7946", "[fd00::3]:7946",
		"10.1.1.1:1",
	}, got)

	// A name that does not resolve is left out and named; the rest stay.
	got, err = resolveJoinAddrs(context.Background(), []string{"dns+missing:1", "dns+empty:2", "dns+argus-gossip:3"}, 7946, lookup)
	require.Equal(t, []string{"10.0.0.1:3", "10.0.0.2:3", "[fd00::3]:3"}, got)
	require.ErrorContains(t, err, "look up join address dns+missing:1: no such host")
	require.ErrorContains(t, err, "look up join address dns+empty:2: no addresses")
}

func TestValidateJoinAddr(t *testing.T) {
	for addr, want := range map[string]string{
		"dns+argus-gossip:7946":     "",
		"dns+argus-gossip":          "",
		"argus-gossip.argus.svc":    "",
		"10.0.0.1:7946":             "",
		"[fd00::1]:7946":            "",
		"dns+":                      "has no name after dns+",
		"dns+:7946":                 "has no name after dns+",
		"dnssrv+_gossip._tcp.argus": `lookup "dnssrv+" not supported (only dns+)`,
	} {
		err := validateJoinAddr(addr)
		if want == "" {
			require.NoError(t, err, addr)
		} else {
			require.ErrorContains(t, err, want, addr)
		}
	}
	cfg := testMemberlistConfig()
	cfg.Join = "10.0.0.1, dnssrvnoa+x"
	require.ErrorContains(t, cfg.Validate(), `lookup "dnssrvnoa+" not supported`)
}

// TestKV_JoinThroughDNS joins a member through a dns+ address whose name is
// looked up by the system resolver (localhost, as a headless Service's name
// would be), and the two converge.
func TestKV_JoinThroughDNS(t *testing.T) {
	if ips, err := net.DefaultResolver.LookupHost(context.Background(), "localhost"); err != nil || len(ips) == 0 {
		t.Skipf("localhost does not resolve here: %v", err)
	}
	a := startMember(t, "ing-a", "", "")
	_, port, err := net.SplitHostPort(a.kv.Addr())
	require.NoError(t, err)
	b := startMember(t, "ing-b", "dns+localhost:"+port, "")
	requireConverged(t, []*testMember{a, b}, map[string]State{"ing-a": StateActive, "ing-b": StateActive})
}
