// Package kubetest runs a real Kubernetes API for tests: etcd and
// kube-apiserver, built from the pinned module tools/kube by
// scripts/install-tools.sh, started on free 127.0.0.1 ports in the test's
// temporary directory.
//
// The API server runs no controllers and no kubelet: a test creates the
// objects that service discovery reads (namespaces, pods with their status
// set through the status subresource, services, endpoints, endpointslices,
// nodes, ingresses) itself, through client-go. Authentication is one static
// token in the system:masters group, authorization is RBAC, and the
// ServiceAccount admission plugin is off so that pods need no service account
// token. Start also installs the Prometheus Operator's ServiceMonitor and
// PodMonitor CRDs (see crd.go for their shape).
//
// The binaries are found in the directory KUBEBUILDER_ASSETS names (the
// convention of controller-runtime's envtest, so the same directory serves
// both). When it is unset or incomplete a test skips loudly, and fails under
// CI=true so that CI never skips.
package kubetest
