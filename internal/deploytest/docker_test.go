package deploytest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// docker runs the docker client against a daemon: the one DOCKER_HOST (or
// the default socket) names when it answers, otherwise a dockerd this test
// starts (Debian's docker.io, which .ci/run installs) on a private socket
// and data root, stopped at the end. With neither the test skips loudly, or
// fails under CI=true.
type docker struct {
	host string // DOCKER_HOST for the client; "" uses the environment's
}

func (d docker) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("docker", args...)
	if d.host != "" {
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.host)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

func (d docker) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := d.run(t, args...)
	require.NoError(t, err, "docker %s:\n%s", strings.Join(args, " "), out)
	return out
}

func skipOrFail(t *testing.T, msg string) {
	t.Helper()
	msg = "!!!!!!!! " + msg + " !!!!!!!! (this test needs a Docker daemon: apt-get install docker.io, as .ci/run does)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: refusing to skip)")
	}
	t.Skip(msg)
}

func startDocker(t *testing.T) docker {
	t.Helper()
	if testing.Short() {
		t.Skip("test with a Docker daemon: skipped in -short mode")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		skipOrFail(t, "no docker client on PATH")
	}
	if _, err := (docker{}).run(t, "info"); err == nil {
		return docker{}
	}
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		skipOrFail(t, "no Docker daemon answers and there is no dockerd to start")
	}
	// A short path: the socket's must fit a sun_path.
	dir, err := os.MkdirTemp("", "argus-dockerd-")
	require.NoError(t, err)
	d := docker{host: "unix://" + filepath.Join(dir, "docker.sock")}
	logFile, err := os.Create(filepath.Join(dir, "dockerd.log"))
	require.NoError(t, err)
	// No bridge and no iptables: the container runs on the host's network,
	// which needs neither, and a CI machine may not allow them.
	cmd := exec.Command(dockerd, "--host="+d.host, "--data-root="+filepath.Join(dir, "root"),
		"--exec-root="+filepath.Join(dir, "exec"), "--pidfile="+filepath.Join(dir, "dockerd.pid"),
		"--bridge=none", "--iptables=false", "--ip6tables=false")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		skipOrFail(t, fmt.Sprintf("start dockerd: %v", err))
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = logFile.Close()
		// dockerd leaves its default network namespace mounted.
		_ = syscall.Unmount(filepath.Join(dir, "exec", "netns", "default"), syscall.MNT_DETACH)
		_ = os.RemoveAll(dir)
	})
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := d.run(t, "info"); err == nil {
			return d
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			skipOrFail(t, fmt.Sprintf("dockerd exited at start:\n%s", log))
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			skipOrFail(t, fmt.Sprintf("dockerd did not answer within a minute:\n%s", log))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestImage builds the image with deploy/build-image.sh, checks that it runs
// as a non-root user with no shell and the version stamped, then runs it as
// Kubernetes would (read-only root, the data directory a volume) and checks
// that it becomes ready, takes a remote-write push, answers a query with the
// pushed sample, and exits 0 on SIGTERM.
func TestImage(t *testing.T) {
	d := startDocker(t)
	root, err := RepoRoot()
	require.NoError(t, err)
	version := fmt.Sprintf("0.0.0-imagetest.%d", time.Now().UnixNano())
	build := exec.Command("bash", filepath.Join(root, "deploy", "build-image.sh"))
	build.Env = append(os.Environ(), "IMAGE=argus-imagetest", "VERSION="+version, "REVISION=imagetest")
	if d.host != "" {
		build.Env = append(build.Env, "DOCKER_HOST="+d.host)
	}
	out, err := build.CombinedOutput()
	require.NoError(t, err, "deploy/build-image.sh:\n%s", out)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	image := lines[len(lines)-1]
	require.Equal(t, "argus-imagetest:"+version, image)
	t.Cleanup(func() { _, _ = d.run(t, "rmi", "-f", image) })

	require.Equal(t, "10001:10001", d.must(t, "image", "inspect", "-f", "{{.Config.User}}", image))
	_, err = d.run(t, "run", "--rm", "--entrypoint", "/bin/sh", image, "-c", "true")
	require.Error(t, err, "the image has a shell")
	require.Contains(t, d.must(t, "run", "--rm", image, "-version"), version)

	ports := clustertest.FreePorts(t, 2)
	name := "argus-imagetest-" + strconv.Itoa(ports[0])
	d.must(t, "run", "-d", "--name", name, "--network", "host", "--read-only",
		"--tmpfs", "/data:rw,uid=10001,gid=10001", image,
		"-target=all", "-storage.path=/data", "-server.http-listen-address=127.0.0.1",
		"-server.http-listen-port="+strconv.Itoa(ports[0]), "-server.grpc-listen-address=127.0.0.1",
		"-server.grpc-listen-port="+strconv.Itoa(ports[1]))
	t.Cleanup(func() { _, _ = d.run(t, "rm", "-f", name) })
	base := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/ready")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 90*time.Second, 200*time.Millisecond, "the container never became ready:\n%s", logsOf(t, d, name))

	now := time.Now().UnixMilli()
	body := clustertest.EncodeWriteRequest(t, []clustertest.TimeSeries{{
		Labels: clustertest.Labels("__name__", "image_test", "job", "docker"), Samples: []clustertest.Sample{{T: now, V: 42}},
	}})
	header := http.Header{clustertest.TenantHeader: {"docker"}}
	require.NoError(t, clustertest.PostRemoteWrite(context.Background(), http.DefaultClient, base+"/api/v1/push", header, body))

	req, err := http.NewRequest(http.MethodGet, base+"/prometheus/api/v1/query?"+url.Values{"query": {"image_test"}}.Encode(), nil)
	require.NoError(t, err)
	req.Header.Set(clustertest.TenantHeader, "docker")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var answer bytes.Buffer
	_, _ = answer.ReadFrom(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, answer.String())
	require.Contains(t, answer.String(), `"__name__":"image_test"`)
	require.Contains(t, answer.String(), `"42"`)

	d.must(t, "stop", "-t", "60", name)
	require.Equal(t, "0", d.must(t, "inspect", "-f", "{{.State.ExitCode}}", name), "exit code on SIGTERM:\n%s", logsOf(t, d, name))
}

func logsOf(t *testing.T, d docker, name string) string {
	out, _ := d.run(t, "logs", "--tail", "40", name)
	return out
}
