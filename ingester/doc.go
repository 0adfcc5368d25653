// Package ingester owns the write side of one Argus instance: per-tenant
// in-memory heads of Gorilla-compressed chunks, the per-tenant write-ahead log
// (WAL) that makes every acknowledged sample survive a process crash, the
// persistence of finished chunks to the storage package, and the gRPC servers
// arguspb.IngesterServer (Push, UserStats) and arguspb.SeriesSourceServer
// (Series, LabelNames, LabelValues) over head and storage together, and
// arguspb.IngesterAdminServer (AdminServer: deletion by tombstones, which
// every head read masks, and the cardinality of the heads). It
// enforces each tenant's share of its global series limits (Deps.Limits,
// Deps.Ring) when a push creates a series.
//
// It does not own the on-disk chunk format or the chunk store (package
// storage), sharding or replication (packages ring and distributor), request
// validation beyond a cheap re-check of label sets, or PromQL (package
// querier).
//
// # Layout
//
//	<storage.path>/tenants/<tenant>/wal/       WAL segments and checkpoints (tsdb/wlog format)
//	<storage.path>/tenants/<tenant>/chunks.db  the tenant's storage.ChunkStore
//
// # Durability
//
// Push returns only after the accepted samples are written to the tenant's WAL
// with one write(2), so kill -9 loses nothing acknowledged; power loss loses
// at most -ingester.wal-sync-period. WAL.md describes the design, the
// durability contract and every crash case; the WAL and head design follows
// Prometheus's TSDB head (tsdb/head.go) and reuses its wlog, record, chunkenc
// and index packages.
package ingester
