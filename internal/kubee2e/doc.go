// Package kubee2e holds the end-to-end tests of the scraper role against a
// real Kubernetes API (internal/kubetest): the real argus binary and the
// real Prometheus server discover the same objects in the same API server
// and must agree on every target and its labels.
package kubee2e
