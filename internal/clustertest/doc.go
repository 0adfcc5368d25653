// Package clustertest runs the real argus binary and the real Prometheus
// server as child processes for end-to-end tests, and talks to them only
// through their public HTTP APIs.
//
// It owns process lifecycle (free loopback ports, storage directories, logs,
// readiness, SIGKILL, SIGTERM and restarts), a remote-write 1.0 client, small
// Prometheus HTTP API and /metrics readers, and Eventually, which retries a
// cmp.Diff-style check instead of sleeping. It owns no assertions about Argus
// behaviour: those live in the tests (internal/e2e, internal/clustere2e).
//
// # Binaries
//
// The argus binary comes from the ARGUS_BIN environment variable (set by
// `make test`). When it is unset, the harness builds ./cmd/argus once per test
// binary into a temporary directory; Main removes that directory.
//
// The Prometheus binary comes from PROMETHEUS_BIN (set by `make test` and
// .ci/run, built by scripts/install-tools.sh). When it is absent a test that
// needs it is skipped with a loud message, except under CI=true, where it
// fails: CI must never skip silently.
//
// # Topology
//
//	test process ──HTTP──▶ argus -target=all (127.0.0.1:http, 127.0.0.1:grpc, storage dir)
//	      │                  ▲ remote write (X-Scope-OrgID)      ▲ scrape /metrics
//	      └────HTTP────▶ prometheus (127.0.0.1:port, scrapes itself and argus)
//
// StartCluster runs a Topology instead: one argus process per role
// (-target=ingester, distributor or querier), all on 127.0.0.1 with their
// own ports, memberlist port and storage directory, gossiping one ring. It
// waits until every process sees the same ring (WaitRing); Member handles
// kill, stop and restart one process with its identity and data kept, and
// AddIngester scales out. Writer pushes steadily to a distributor and
// records which pushes were acknowledged, and Writer.CheckStored compares a
// querier's raw samples with that record. DiffAnswers and DiffRaw compare
// Argus's query answers with the real Prometheus's.
//
//	StartCluster(t, Topology{Ingesters: 3, Distributors: 1, Queriers: 1, RF: 3})
//	writer ──▶ dist-0 ──gRPC, quorum──▶ ing-0, ing-1, ing-2 ◀──gRPC── querier-0 ◀── test
//	every process ◀──memberlist gossip──▶ every process (joined at the ingesters)
//
// All helpers take a testing.TB, call t.Helper and fail the test on transport
// errors; HTTP statuses are returned for the test to assert. Helpers are safe
// for concurrent use except the lifecycle methods of one process (Start, Stop,
// Kill, Restart), which the test calls from one goroutine.
package clustertest
