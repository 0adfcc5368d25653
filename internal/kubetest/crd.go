package kubetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// The Prometheus Operator's CRDs. Its Go API module
// (github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring)
// ships the types but not the generated CRD manifests, and the Operator's
// main module, which has them, is not on the module proxy. The CRDs
// installed here are therefore minimal structural ones: the same group,
// version, kinds, names and scope, with a spec whose fields the API server
// keeps unvalidated (x-kubernetes-preserve-unknown-fields). A resource the
// Operator's full schema would refuse is accepted here; everything the
// scraper reads is the same.
var (
	ServiceMonitors = schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "servicemonitors"}
	PodMonitors     = schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "podmonitors"}
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRDs creates the ServiceMonitor and PodMonitor CRDs and waits until
// their resources can be listed.
func installCRDs(t testing.TB, client dynamic.Interface) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	for _, c := range []struct {
		gvr            schema.GroupVersionResource
		kind, listKind string
		short          string
	}{
		{ServiceMonitors, "ServiceMonitor", "ServiceMonitorList", "smon"},
		{PodMonitors, "PodMonitor", "PodMonitorList", "pmon"},
	} {
		_, err := client.Resource(crdGVR).Create(ctx, monitoringCRD(c.gvr, c.kind, c.listKind, c.short), metav1.CreateOptions{})
		require.NoError(t, err, "create CRD %s", c.gvr.Resource)
	}
	for _, gvr := range []schema.GroupVersionResource{ServiceMonitors, PodMonitors} {
		for {
			_, err := client.Resource(gvr).List(ctx, metav1.ListOptions{})
			if err == nil {
				break
			}
			require.NoError(t, ctx.Err(), "CRD %s not served: %v", gvr.Resource, err)
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func monitoringCRD(gvr schema.GroupVersionResource, kind, listKind, short string) *unstructured.Unstructured {
	singular := map[string]string{"ServiceMonitor": "servicemonitor", "PodMonitor": "podmonitor"}[kind]
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": gvr.Resource + "." + gvr.Group},
		"spec": map[string]any{
			"group": gvr.Group,
			"scope": "Namespaced",
			"names": map[string]any{
				"kind":       kind,
				"listKind":   listKind,
				"plural":     gvr.Resource,
				"singular":   singular,
				"shortNames": []any{short},
				"categories": []any{"prometheus-operator"},
			},
			"versions": []any{map[string]any{
				"name":    gvr.Version,
				"served":  true,
				"storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type":     "object",
					"required": []any{"spec"},
					"properties": map[string]any{
						"apiVersion": map[string]any{"type": "string"},
						"kind":       map[string]any{"type": "string"},
						"metadata":   map[string]any{"type": "object"},
						"spec": map[string]any{
							"type":                                 "object",
							"x-kubernetes-preserve-unknown-fields": true,
						},
					},
				}},
			}},
		},
	}}
}
