// Package deploytest proves what deploy/ ships: the Kubernetes manifests of
// both shapes (rendered from the kustomize overlays here, checked for the
// invariants an operator relies on, and accepted by a real kube-apiserver
// with a server-side dry run), the mixin's dashboards and alert rules, and
// the container image. deploy/ itself holds no Go code (CONTRIBUTING.md,
// "Packages"), so its tests live here.
//
// Render is the one renderer: the kustomize API (sigs.k8s.io/kustomize/api,
// the library inside `kubectl apply -k`), so that what the tests check is
// what `kubectl apply -k deploy/kubernetes/overlays/<shape>` applies.
package deploytest
