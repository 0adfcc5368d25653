package kubetest

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

var (
	hostIPOnce sync.Once
	hostIP     string
	hostIPErr  error
)

// HostIP is the address the test objects point at: the machine's first
// IPv4 address that is neither loopback nor link-local. The API server
// refuses loopback addresses in Endpoints and EndpointSlices (and as its
// own advertised address), so 127.0.0.1 cannot stand for a pod there; a
// local interface's address can, and the processes under test reach it.
func HostIP(t testing.TB) string {
	t.Helper()
	hostIPOnce.Do(func() {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			hostIPErr = err
			return
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok || n.IP.To4() == nil || n.IP.IsLoopback() || n.IP.IsLinkLocalUnicast() {
				continue
			}
			hostIP = n.IP.String()
			return
		}
		hostIPErr = fmt.Errorf("no IPv4 address other than loopback among %v", addrs)
	})
	require.NoError(t, hostIPErr, "the Kubernetes tests need a local non-loopback IPv4 address")
	return hostIP
}

// Exporter serves kubetest_up{exporter=NAME} 1 as /metrics (and on every
// other path) on HostIP until the test ends, and returns its port.
func Exporter(t testing.TB, name string) int32 {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(HostIP(t), "0"))
	require.NoError(t, err)
	srv := &httptest.Server{
		Listener: l,
		Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "kubetest_up{exporter=%q} 1\n", name)
		})},
	}
	srv.Start()
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(l.Addr().String())
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	return int32(p)
}
