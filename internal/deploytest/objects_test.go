package deploytest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// shape is one rendered overlay, its objects decoded into their types.
type shape struct {
	name         string
	objects      []*unstructured.Unstructured
	statefulSets []*appsv1.StatefulSet
	deployments  []*appsv1.Deployment
	services     []*corev1.Service
	configMaps   []*corev1.ConfigMap
	pdbs         []*policyv1.PodDisruptionBudget
	hpas         []*autoscalingv2.HorizontalPodAutoscaler
}

// workload is a pod template with the name of its owner.
type workload struct {
	kind, name string
	labels     map[string]string
	spec       *corev1.PodSpec
}

func renderShape(t *testing.T, name string) *shape {
	t.Helper()
	root, err := RepoRoot()
	require.NoError(t, err)
	objs, err := Render(root, name)
	require.NoError(t, err)
	s := &shape{name: name, objects: objs}
	for _, o := range objs {
		switch o.GetKind() {
		case "StatefulSet":
			s.statefulSets = append(s.statefulSets, convert[appsv1.StatefulSet](t, o))
		case "Deployment":
			s.deployments = append(s.deployments, convert[appsv1.Deployment](t, o))
		case "Service":
			s.services = append(s.services, convert[corev1.Service](t, o))
		case "ConfigMap":
			s.configMaps = append(s.configMaps, convert[corev1.ConfigMap](t, o))
		case "PodDisruptionBudget":
			s.pdbs = append(s.pdbs, convert[policyv1.PodDisruptionBudget](t, o))
		case "HorizontalPodAutoscaler":
			s.hpas = append(s.hpas, convert[autoscalingv2.HorizontalPodAutoscaler](t, o))
		}
	}
	return s
}

// convert decodes o into T, refusing fields T does not have.
func convert[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, out, true), "%s %s", o.GetKind(), o.GetName())
	return out
}

func (s *shape) workloads() []workload {
	var out []workload
	for _, ss := range s.statefulSets {
		out = append(out, workload{"StatefulSet", ss.Name, ss.Spec.Template.Labels, &ss.Spec.Template.Spec})
	}
	for _, d := range s.deployments {
		out = append(out, workload{"Deployment", d.Name, d.Spec.Template.Labels, &d.Spec.Template.Spec})
	}
	return out
}

// ingesters returns the StatefulSets that run an ingester (-target=all or
// ingester).
func (s *shape) ingesters() []*appsv1.StatefulSet {
	var out []*appsv1.StatefulSet
	for _, ss := range s.statefulSets {
		if t := flagValue(ss.Spec.Template.Spec.Containers[0].Args, "target"); t == "all" || t == "ingester" {
			out = append(out, ss)
		}
	}
	return out
}

func (s *shape) service(name string) *corev1.Service {
	for _, svc := range s.services {
		if svc.Name == name {
			return svc
		}
	}
	return nil
}

func (s *shape) configMap(name string) *corev1.ConfigMap {
	for _, cm := range s.configMaps {
		if cm.Name == name {
			return cm
		}
	}
	return nil
}

// flagValue returns the value of -name=value in args, "" when absent.
func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "-"+name+"="); ok {
			return v
		}
	}
	return ""
}

// selects reports whether selector labels all match labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// documentedFlags returns the flag names of docs/flags.md, which a test of
// cmd/argus keeps equal to the registered flags.
func documentedFlags(t *testing.T) map[string]bool {
	t.Helper()
	root, err := RepoRoot()
	require.NoError(t, err)
	doc, err := os.ReadFile(filepath.Join(root, "docs", "flags.md"))
	require.NoError(t, err)
	out := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `-([a-z0-9.-]+)`").FindAllStringSubmatch(string(doc), -1) {
		out[m[1]] = true
	}
	require.Greater(t, len(out), 50, "flags parsed from docs/flags.md")
	return out
}
