// Package client is the Go client of Argus's public gRPC query API
// (service argus.query.v1.Query, proto/argusquerypb), served on the
// querier's gRPC port: PromQL instant and range queries, series, label
// names and values, and raw chunks.
//
// A query's answer streams in bounded frames. Query and QueryRange collect
// it; QueryEach and QueryRangeEach hand each series to a callback as it
// arrives, so that a program can process a result of any size in bounded
// memory. Every answer is what the HTTP API (/prometheus/api/v1/...) gives
// for the same query, float for float.
//
// It owns the connection handling, the tenant and token metadata of every
// call, and the conversion of frames into series. It does not own retries
// or load balancing (pass grpc.DialOption in Options), nor any PromQL.
//
// A refused call returns an *Error carrying the gRPC code and, when the
// refusal has one, its err-argus-* ID (docs/errors.md).
package client
