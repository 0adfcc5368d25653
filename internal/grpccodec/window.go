package grpccodec

import "google.golang.org/grpc"

// HTTP/2 flow-control windows of Argus's gRPC servers. A push from the
// distributor is one message of about 250 KB per 1000 series; with gRPC's
// default 64 KB windows the sender stops after 64 KB until the receiver
// answers with WINDOW_UPDATE frames, which it sends every 16 KB read, so
// every push took about 16 extra small writes and reads on each side, each a
// syscall and a goroutine wake-up (gRPC's BDP estimator, which would widen
// the windows, measures almost nothing on a low-latency link). With these
// windows a push goes out in one go and the receiver acknowledges about
// once per push. In `make bench`'s cluster step this cut the cluster's CPU
// per sample by about a tenth (docs/benchmarks.md, "Cluster ingest").
//
// Memory: the window bounds the bytes a client may send that the server has
// not read yet; a unary handler reads its whole message at once, bounded by
// -server.grpc-max-msg-size anyway, and the BDP estimator may grow the
// default windows to 16 MB as well, so 4 MB per connection adds no new
// bound to plan for.
const (
	streamWindow = 1 << 20
	connWindow   = 4 << 20
)

// ServerWindowOptions are the flow-control windows of every Argus gRPC
// server (see above).
func ServerWindowOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.InitialWindowSize(streamWindow), grpc.InitialConnWindowSize(connWindow)}
}
