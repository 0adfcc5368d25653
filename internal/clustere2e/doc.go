// Package clustere2e holds the cluster scenario tests of Argus (issue #3):
// each starts a real multi-process cluster (ingesters, distributors,
// queriers joined over memberlist) through internal/clustertest, acts only
// through public HTTP APIs (remote write, the Prometheus query API, /ring,
// /metrics), kills, stops, restarts and adds processes, and asserts exact
// query results. The scenarios run one after the other (a cluster of six
// processes already keeps the two cores busy); they are skipped by -short.
//
// Which pushes count: a 2xx push is acknowledged and each of its samples
// must be readable afterwards; a 5xx or transport error leaves its samples
// undetermined (they may have reached some replicas) until it is pushed
// again, as Prometheus's retry does. No other sample may ever appear.
package clustere2e
