package kubetest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

const (
	// readyTimeout bounds the wait for etcd and then kube-apiserver; both
	// are ready in seconds on an idle machine, far later on a loaded one.
	readyTimeout = 3 * time.Minute
	// Token is the bearer token of the one user, a member of
	// system:masters.
	Token = "argus-kubetest-token"
)

// Server is a running etcd and kube-apiserver.
type Server struct {
	// Host is the API server's URL, https://127.0.0.1:PORT (a self-signed
	// certificate: clients skip verification).
	Host string
	// Kubeconfig is the path of a kubeconfig file for Host and Token, usable
	// by client-go and by Prometheus's kubernetes_sd_configs.
	Kubeconfig string
	// Config is the client-go configuration of the same.
	Config *rest.Config
	// Client and Dynamic are clients built from Config.
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
}

// Assets returns the directory holding kube-apiserver and etcd, from
// KUBEBUILDER_ASSETS. When it is unset or lacks either binary the test is
// skipped loudly, or fails under CI=true; in -short mode it is skipped.
func Assets(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("test with a real kube-apiserver: skipped in -short mode")
	}
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	msg := ""
	if dir == "" {
		msg = "KUBEBUILDER_ASSETS not set"
	} else {
		for _, bin := range []string{"kube-apiserver", "etcd"} {
			if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
				msg = fmt.Sprintf("KUBEBUILDER_ASSETS lacks %s (%v)", bin, err)
			}
		}
	}
	if msg == "" {
		return dir
	}
	msg = "!!!!!!!! " + msg + ": run .ci/run or `scripts/install-tools.sh kube` and set KUBEBUILDER_ASSETS to the directory it prints !!!!!!!! (this test needs a real kube-apiserver)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: refusing to skip)")
	}
	t.Skip(msg)
	return ""
}

// Start starts etcd and kube-apiserver, waits until the API server is
// ready, installs the monitoring CRDs and returns the server. Both processes
// are killed at the end of the test.
func Start(t testing.TB) *Server {
	t.Helper()
	assets := Assets(t)
	dir := t.TempDir()
	ports := clustertest.FreePorts(t, 3)
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	startEtcd(t, assets, dir, etcdURL, ports[1])
	s := &Server{Host: "https://127.0.0.1:" + strconv.Itoa(ports[2])}
	startAPIServer(t, assets, dir, etcdURL, ports[2])
	s.Config = &rest.Config{
		Host:            s.Host,
		BearerToken:     Token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             200,
		Burst:           400,
	}
	var err error
	s.Client, err = kubernetes.NewForConfig(s.Config)
	require.NoError(t, err)
	s.Dynamic, err = dynamic.NewForConfig(s.Config)
	require.NoError(t, err)
	s.Kubeconfig = filepath.Join(dir, "kubeconfig.yaml")
	require.NoError(t, os.WriteFile(s.Kubeconfig, []byte(kubeconfig(s.Host)), 0o600))
	installCRDs(t, s.Dynamic)
	return s
}

func startEtcd(t testing.TB, assets, dir, clientURL string, peerPort int) {
	t.Helper()
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	args := []string{
		"--name=kubetest",
		"--data-dir=" + filepath.Join(dir, "etcd"),
		"--listen-client-urls=" + clientURL,
		"--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=kubetest=" + peerURL,
		// A test's data dies with it: no fsync, which is most of etcd's
		// write latency on a shared disk.
		"--unsafe-no-fsync",
		"--log-level=warn",
	}
	exited := startProcess(t, dir, "etcd", filepath.Join(assets, "etcd"), args)
	waitReady(t, "etcd", clientURL+"/health", nil, exited)
}

func startAPIServer(t testing.TB, assets, dir, etcdURL string, port int) {
	t.Helper()
	tokens := filepath.Join(dir, "tokens.csv")
	require.NoError(t, os.WriteFile(tokens, []byte(Token+`,admin,admin,"system:masters"`+"\n"), 0o600))
	key, pub := serviceAccountKeys(t, dir)
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// The endpoints of the kubernetes service may not be a loopback
		// address; nothing here needs them.
		"--endpoint-reconciler-type=none",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--token-auth-file=" + tokens,
		"--authorization-mode=RBAC",
		"--disable-admission-plugins=ServiceAccount",
		"--service-account-key-file=" + pub,
		"--service-account-signing-key-file=" + key,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--allow-privileged=true",
		"--profiling=false",
		"--v=0",
	}
	exited := startProcess(t, dir, "kube-apiserver", filepath.Join(assets, "kube-apiserver"), args)
	waitReady(t, "kube-apiserver", "https://127.0.0.1:"+strconv.Itoa(port)+"/readyz", http.Header{"Authorization": {"Bearer " + Token}}, exited)
}

// serviceAccountKeys writes an RSA key pair for signing and verifying
// service-account tokens, which kube-apiserver requires even when no token
// is ever issued.
func serviceAccountKeys(t testing.TB, dir string) (keyPath, pubPath string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	keyPath, pubPath = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	require.NoError(t, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600))
	require.NoError(t, os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644))
	return keyPath, pubPath
}

// startProcess starts bin with its output in DIR/NAME.log, killed when the
// test ends (or when the test binary dies: Pdeathsig). A failed test prints
// the log's tail. The returned channel is closed when the process exits.
func startProcess(t testing.TB, dir, name, bin string, args []string) <-chan struct{} {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start(), "start %s", name)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		_ = logFile.Close()
		if t.Failed() {
			logTail(t, name, logPath)
		}
	})
	return done
}

func logTail(t testing.TB, name, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	const max = 8 << 10
	if len(b) > max {
		b = b[len(b)-max:]
	}
	t.Logf("--- tail of %s log (%s) ---\n%s", name, path, b)
}

// waitReady polls url until it answers 200, failing at once if the process
// exits.
func waitReady(t testing.TB, name, url string, header http.Header, exited <-chan struct{}) {
	t.Helper()
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // the test server's self-signed certificate
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	last := ""
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		require.NoError(t, err)
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before it was ready (its log tail follows)", name)
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatalf("%s not ready at %s within %v: %s", name, url, readyTimeout, last)
}

// kubeconfig is a kubeconfig for host with the test token.
func kubeconfig(host string) string {
	return strings.TrimSpace(fmt.Sprintf(`
apiVersion: v1
kind: Config
clusters:
- name: kubetest
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: kubetest
  context:
    cluster: kubetest
    user: admin
current-context: kubetest
`, host, Token)) + "\n"
}
