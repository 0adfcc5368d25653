// Package ingester owns the write side of one Argus instance: per-tenant
// in-memory heads of Gorilla-compressed chunks, the write-ahead log (WAL),
// shared by every tenant, that makes every acknowledged sample survive a
// process crash, the persistence of finished chunks to the storage
// package's DB (also shared by every tenant), the background compaction
// and retention of that DB, and the gRPC servers arguspb.IngesterServer
// (Push, UserStats), arguspb.SeriesSourceServer (Series, LabelNames,
// LabelValues over head and DB together; QueryExemplars and
// MetricsMetadata over each tenant's bounded exemplar ring and metric
// metadata, WAL-logged: exemplars.go, metadata.go), and arguspb.IngesterAdminServer
// (AdminServer: deletion by tombstones, which the DB keeps and every read
// masks, and the cardinality of the heads). It enforces each tenant's share
// of its global series limits (Deps.Limits, Deps.Ring) when a push creates
// a series, each tenant's retention period, and its own instance limits. A
// tenant's head lives while it has series or was used recently: an idle
// tenant's head is closed, and a tenant whose flushes fail is refused alone
// (WAL.md, "Idle tenants" and "Failed tenants").
//
// It does not own the on-disk chunk format or the DB (package storage),
// sharding or replication (packages ring and distributor), request
// validation beyond a cheap re-check of label sets, or PromQL (package
// querier).
//
// # Layout
//
//	<storage.path>/wal/                      WAL segments and checkpoints of every tenant (tsdb/wlog format)
//	<storage.path>/db/                       the storage.DB: time partitions shared by every tenant
//	<storage.path>/removed_series_max_time   per tenant, a bound on the series that left the head (WAL.md)
//
// A tenant has no file of its own, so the open files do not grow with the
// tenants: a tenant is a head in memory, a label in the WAL's series
// records, and a key prefix in the DB.
//
// # Memory per series
//
// Memory per in-memory series is a benchmarked goal. A series keeps its
// labels as IDs into its tenant's symbol table, which stores each label
// name and value once and which the postings share (symbols.go, with the
// rules for reading a series' labels while GC may remove it), and the
// state of its open chunk's XOR encoder in itself (xor.go).
//
// # Native histograms
//
// A series that gets a native histogram sample gets a histState (hist.go),
// memSeries' one pointer for it (nil for float-only series): from then on
// its samples, floats included, go to Prometheus chunkenc chunks of any
// encoding, cut on a change of sample type as in Prometheus's head, on 2h
// ranges, and at chunkenc's size target for histogram chunks. They are
// logged as Prometheus's histogram WAL records (wal_histogram.go),
// persisted with their encoding and sent to queriers as
// CHUNK_ENCODING_HISTOGRAM and CHUNK_ENCODING_FLOAT_HISTOGRAM chunks. The
// ordering, duplicate and too-old rules are those of float samples
// (hist_push.go); a retried histogram equal to the last one is accepted.
//
// # Out-of-order samples and retries
//
// A sample older than its series' newest is merged into the series' chunks
// when the tenant's out_of_order_time_window allows it, so that a series'
// chunks stay sorted and never overlap anywhere (in memory, in the DB, on
// the query wire); an exact duplicate of a sample in memory (a retried push)
// is accepted and stored once. ooo.go and WAL.md ("Out-of-order samples")
// say how, and what a flush may persist for it.
//
// # Durability
//
// Push returns only after the accepted samples are written to the WAL with
// one write(2), so kill -9 loses nothing acknowledged; power loss loses at
// most -ingester.wal-sync-period. WAL.md describes the design, the
// durability contract and every crash case; the WAL and head design follows
// Prometheus's TSDB head (tsdb/head.go) and reuses its wlog, record,
// chunkenc and index packages.
//
// # Request memory
//
// A Push request lives in memory leased from grpccodec (the encoded bytes,
// which every label string aliases, and the arrays of its series, labels
// and samples), which Push hands back when it returns and the next request
// overwrites (grpccodec.ReleaseWriteRequest). So Push keeps nothing that
// aliases its request:
//
//   - a new series' labels are interned into the tenant's symbol table,
//     which copies each new string (symbolTable.internLocked); the postings,
//     the per-metric counts and the WAL's series records use the table's
//     strings, never the request's;
//   - WAL records are encoded into the push's own pooled buffer (pushBatch),
//     from refs, times, values and symbol-table labels;
//   - the response's rejected series copy their labels, and its messages,
//     like every error Push returns, are new strings formatted before Push
//     returns: gRPC marshals the response after the handler returns, so it
//     must not alias the request either;
//   - the push's scratch state (pushBatch) drops its references to the
//     request before it is pooled.
//
// TestPushRetainsNoRequestMemory pushes leased requests and overwrites
// their memory after each push, then checks the head, the WAL replay and the
// responses.
package ingester
