package kubetest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The API server runs no kubelet and no controllers: these helpers create
// the objects as those would leave them.

// CreateNamespace creates a namespace with labels and annotations.
func (s *Server) CreateNamespace(t testing.TB, name string, labels, annotations map[string]string) {
	t.Helper()
	_, err := s.Client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: annotations},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// CreateRunningPod creates pod and then sets its status, as a kubelet would:
// the given phase (Running when empty), ready, with ip as its pod IP.
func (s *Server) CreateRunningPod(t testing.TB, pod *corev1.Pod, ip string, phase corev1.PodPhase) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	pods := s.Client.CoreV1().Pods(pod.Namespace)
	created, err := pods.Create(ctx, pod, metav1.CreateOptions{})
	require.NoError(t, err)
	if phase == "" {
		phase = corev1.PodRunning
	}
	created.Status = corev1.PodStatus{
		Phase:  phase,
		PodIP:  ip,
		PodIPs: []corev1.PodIP{{IP: ip}},
		HostIP: ip,
		Conditions: []corev1.PodCondition{{
			Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now(),
		}},
	}
	updated, err := pods.UpdateStatus(ctx, created, metav1.UpdateOptions{})
	require.NoError(t, err)
	return updated
}

// CreateService creates a service.
func (s *Server) CreateService(t testing.TB, svc *corev1.Service) {
	t.Helper()
	_, err := s.Client.CoreV1().Services(svc.Namespace).Create(context.Background(), svc, metav1.CreateOptions{})
	require.NoError(t, err)
}

// CreateEndpoints creates an Endpoints object (the endpoints role reads
// these; the endpoints controller would derive them from the service).
func (s *Server) CreateEndpoints(t testing.TB, eps *corev1.Endpoints) { //nolint:staticcheck // the endpoints role of Prometheus still reads core/v1 Endpoints
	t.Helper()
	_, err := s.Client.CoreV1().Endpoints(eps.Namespace).Create(context.Background(), eps, metav1.CreateOptions{})
	require.NoError(t, err)
}

// CreateEndpointSlice creates an EndpointSlice.
func (s *Server) CreateEndpointSlice(t testing.TB, es *discoveryv1.EndpointSlice) {
	t.Helper()
	_, err := s.Client.DiscoveryV1().EndpointSlices(es.Namespace).Create(context.Background(), es, metav1.CreateOptions{})
	require.NoError(t, err)
}
