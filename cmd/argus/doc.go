// Command argus is the one Argus binary. It parses flags, wires the
// components of the roles named by -target, serves HTTP and gRPC, and turns
// SIGTERM into a two-phase graceful stop: drain HTTP, then stop the services
// (the ingester flushes and closes its WALs).
package main
