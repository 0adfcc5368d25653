package kubetest

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestStart starts the API server and checks what the Kubernetes tests
// rely on: a running pod with the IP the test gave it, the monitoring CRDs
// served, and a kubeconfig that reaches the same server.
func TestStart(t *testing.T) {
	s := Start(t)
	ctx := context.Background()
	s.CreateNamespace(t, "a", map[string]string{"tenant": "x"}, nil)
	pod := s.CreateRunningPod(t, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "p"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.invalid/c"}}},
	}, "127.0.0.1", "")
	require.Equal(t, "127.0.0.1", pod.Status.PodIP)
	require.Equal(t, corev1.PodRunning, pod.Status.Phase)

	sm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "monitoring.coreos.com/v1",
		"kind":       "ServiceMonitor",
		"metadata":   map[string]any{"name": "m", "namespace": "a"},
		"spec":       map[string]any{"endpoints": []any{map[string]any{"port": "web"}}, "selector": map[string]any{}},
	}}
	_, err := s.Dynamic.Resource(ServiceMonitors).Namespace("a").Create(ctx, sm, metav1.CreateOptions{})
	require.NoError(t, err)
	got, err := s.Dynamic.Resource(ServiceMonitors).Namespace("a").Get(ctx, "m", metav1.GetOptions{})
	require.NoError(t, err)
	port, _, _ := unstructured.NestedSlice(got.Object, "spec", "endpoints")
	require.Equal(t, []any{map[string]any{"port": "web"}}, port, "the spec is kept as written")

	b, err := os.ReadFile(s.Kubeconfig)
	require.NoError(t, err)
	rc, err := clientcmd.RESTConfigFromKubeConfig(b)
	require.NoError(t, err)
	require.Equal(t, s.Host, rc.Host)
	require.Equal(t, Token, rc.BearerToken)

	// A request without the token is refused: the server authenticates.
	anon := *s.Config
	anon.BearerToken = ""
	anonClient, err := kubernetes.NewForConfig(&anon)
	require.NoError(t, err)
	_, err = anonClient.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	require.Error(t, err)
	require.True(t, apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err), "anonymous list: %v", err)
	_, err = s.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
}
