package deploytest

import (
	"context"
	"flag"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/argus-tsdb/argus/limits"
)

// roles are the -target values a manifest may use.
var roles = []string{"all", "distributor", "ingester", "querier", "scraper", "ruler"}

// TestRendered_CommittedFilesCurrent keeps deploy/kubernetes/rendered, the
// output of both overlays for readers and for clients without kustomize,
// equal to what the overlays render. ARGUS_UPDATE_DOCS=1 rewrites them.
func TestRendered_CommittedFilesCurrent(t *testing.T) {
	root, err := RepoRoot()
	require.NoError(t, err)
	for _, s := range Shapes {
		got, err := RenderYAML(root, s)
		require.NoError(t, err)
		got = append([]byte("# Generated from deploy/kubernetes/overlays/"+s+" by internal/deploytest (ARGUS_UPDATE_DOCS=1 go test ./internal/deploytest); do not edit.\n"), got...)
		p := filepath.Join(root, "deploy", "kubernetes", "rendered", s+".yaml")
		if os.Getenv("ARGUS_UPDATE_DOCS") == "1" {
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
			require.NoError(t, os.WriteFile(p, got, 0o644))
			continue
		}
		want, err := os.ReadFile(p)
		require.NoError(t, err, "run ARGUS_UPDATE_DOCS=1 go test ./internal/deploytest")
		require.Equal(t, string(want), string(got), "%s is stale: run ARGUS_UPDATE_DOCS=1 go test ./internal/deploytest", p)
	}
}

// TestRendered_Containers: every container of both shapes has a readiness
// probe on /ready, CPU and memory requests, and only flags Argus has.
func TestRendered_Containers(t *testing.T) {
	known := documentedFlags(t)
	for _, name := range Shapes {
		s := renderShape(t, name)
		require.NotEmpty(t, s.workloads(), name)
		for _, w := range s.workloads() {
			require.NotEmpty(t, w.spec.Containers, "%s %s", w.kind, w.name)
			for _, c := range append(slices.Clone(w.spec.InitContainers), w.spec.Containers...) {
				where := name + ": " + w.kind + " " + w.name + " container " + c.Name
				p := c.ReadinessProbe
				require.NotNil(t, p, where+": readiness probe")
				require.NotNil(t, p.HTTPGet, where+": readiness probe is not HTTP")
				require.Equal(t, "/ready", p.HTTPGet.Path, where)
				requireContainerPort(t, c, p.HTTPGet.Port, corev1.ProtocolTCP, where+": readiness probe port")
				for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
					q, ok := c.Resources.Requests[r]
					require.True(t, ok && !q.IsZero(), "%s: no %s request", where, r)
				}
				require.NotNil(t, c.SecurityContext, where)
				require.Equal(t, new(true), c.SecurityContext.ReadOnlyRootFilesystem, where)
				for _, a := range c.Args {
					f, _, _ := strings.Cut(strings.TrimPrefix(a, "-"), "=")
					require.True(t, strings.HasPrefix(a, "-") && known[f], "%s: %q is no flag of docs/flags.md", where, a)
				}
				require.Contains(t, roles, flagValue(c.Args, "target"), where)
			}
			require.NotNil(t, w.spec.SecurityContext, name+" "+w.name)
			require.Equal(t, new(true), w.spec.SecurityContext.RunAsNonRoot, name+" "+w.name)
		}
	}
}

// requireContainerPort requires port (a name or number) to be one of c's
// ports with protocol proto, and returns its number.
func requireContainerPort(t *testing.T, c corev1.Container, port intstr.IntOrString, proto corev1.Protocol, where string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if (port.Type == intstr.String && p.Name == port.StrVal || port.Type == intstr.Int && p.ContainerPort == port.IntVal) && p.Protocol == proto {
			return p.ContainerPort
		}
	}
	t.Fatalf("%s: %s/%s is no port of the container (%v)", where, port.String(), proto, c.Ports)
	return 0
}

// TestRendered_JoinThroughHeadlessService: every Argus pod joins the gossip
// cluster through dns+NAME:PORT, where NAME is a headless Service of the
// same shape that selects the pod, publishes unready pods (a pod is ready
// only after it joined) and forwards PORT to the pod's gossip port.
func TestRendered_JoinThroughHeadlessService(t *testing.T) {
	for _, name := range Shapes {
		s := renderShape(t, name)
		for _, w := range s.workloads() {
			c := w.spec.Containers[0]
			where := name + ": " + w.kind + " " + w.name
			join := flagValue(c.Args, "memberlist.join")
			rest, ok := strings.CutPrefix(join, "dns+")
			require.True(t, ok, "%s: -memberlist.join=%q is no dns+ address", where, join)
			host, portStr, err := net.SplitHostPort(rest)
			require.NoError(t, err, where)
			port, err := strconv.Atoi(portStr)
			require.NoError(t, err, where)
			svc := s.service(host)
			require.NotNil(t, svc, "%s: join name %q is no Service of the shape", where, host)
			require.Equal(t, corev1.ClusterIPNone, svc.Spec.ClusterIP, "%s: Service %s is not headless", where, host)
			require.True(t, svc.Spec.PublishNotReadyAddresses, "%s: Service %s hides unready pods", where, host)
			require.True(t, selects(svc.Spec.Selector, w.labels), "%s: Service %s does not select the pod", where, host)
			bind := 7946 // -memberlist.bind-port's default
			if v := flagValue(c.Args, "memberlist.bind-port"); v != "" {
				bind, err = strconv.Atoi(v)
				require.NoError(t, err)
			}
			for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
				i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == int32(port) && p.Protocol == proto })
				require.GreaterOrEqual(t, i, 0, "%s: Service %s has no %s port %d", where, host, proto, port)
				got := requireContainerPort(t, c, svc.Spec.Ports[i].TargetPort, proto, where+": gossip target port")
				require.Equal(t, int32(bind), got, "%s: gossip %s reaches container port %d, memberlist binds %d", where, proto, got, bind)
			}
			if w.kind == "StatefulSet" {
				ss := s.statefulSets[slices.IndexFunc(s.statefulSets, func(x *appsv1.StatefulSet) bool { return x.Name == w.name })]
				require.NotNil(t, s.service(ss.Spec.ServiceName), "%s: governing Service %q missing", where, ss.Spec.ServiceName)
			}
		}
	}
}

// TestRendered_RuntimeConfig: every Argus pod reads its per-tenant limits
// from the shape's ConfigMap, mounted where -runtime-config.file points, and
// the file shipped loads as Argus loads it.
func TestRendered_RuntimeConfig(t *testing.T) {
	for _, name := range Shapes {
		s := renderShape(t, name)
		for _, w := range s.workloads() {
			c := w.spec.Containers[0]
			where := name + ": " + w.kind + " " + w.name
			file := flagValue(c.Args, "runtime-config.file")
			require.NotEmpty(t, file, where)
			m := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == path.Dir(file) })
			require.GreaterOrEqual(t, m, 0, "%s: nothing mounted at %s", where, path.Dir(file))
			v := slices.IndexFunc(w.spec.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[m].Name })
			require.GreaterOrEqual(t, v, 0, where)
			require.NotNil(t, w.spec.Volumes[v].ConfigMap, "%s: the runtime config is no ConfigMap", where)
			cm := s.configMap(w.spec.Volumes[v].ConfigMap.Name)
			require.NotNil(t, cm, where)
			data, ok := cm.Data[path.Base(file)]
			require.True(t, ok, "%s: ConfigMap %s has no %s", where, cm.Name, path.Base(file))
			requireRuntimeConfigLoads(t, data)
		}
	}
}

func requireRuntimeConfigLoads(t *testing.T, data string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "overrides.yaml")
	require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
	var defaults limits.Limits
	defaults.RegisterFlags(flag.NewFlagSet("limits", flag.PanicOnError))
	o, err := limits.New(limits.Config{File: p, ReloadPeriod: time.Minute}, defaults, limits.Deps{})
	require.NoError(t, err)
	require.NoError(t, o.Starting(context.Background()))
}

// TestRendered_ImageIsMakeImages: every container of both shapes runs the
// image `make image` builds, $(IMAGE):$(VERSION) of the Makefile, which is
// also deploy/build-image.sh's default; so a version bump that forgets the
// overlays fails here.
func TestRendered_ImageIsMakeImages(t *testing.T) {
	root, err := RepoRoot()
	require.NoError(t, err)
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	require.NoError(t, err)
	makeVar := func(name string) string {
		m := regexp.MustCompile(`(?m)^` + name + `\s*\?=\s*(\S+)\s*$`).FindSubmatch(mk)
		require.NotNil(t, m, "no %s ?= in the Makefile", name)
		return string(m[1])
	}
	image := makeVar("IMAGE") + ":" + makeVar("VERSION")
	script, err := os.ReadFile(filepath.Join(root, "deploy", "build-image.sh"))
	require.NoError(t, err)
	require.Contains(t, string(script), `image="${IMAGE:-`+makeVar("IMAGE")+`}"`, "build-image.sh's default image")
	require.Contains(t, string(script), `version="${VERSION:-`+makeVar("VERSION")+`}"`, "build-image.sh's default version")
	for _, name := range Shapes {
		for _, w := range renderShape(t, name).workloads() {
			for _, c := range append(slices.Clone(w.spec.InitContainers), w.spec.Containers...) {
				require.Equal(t, image, c.Image, "%s: %s %s container %s", name, w.kind, w.name, c.Name)
			}
		}
	}
}
