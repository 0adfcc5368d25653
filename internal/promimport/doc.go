// Package promimport copies the persisted blocks of a Prometheus TSDB data
// directory into one tenant of an Argus store, so that a team moving from
// Prometheus keeps its history. It reads blocks with Prometheus's own tsdb
// package (block index and chunk readers, tombstones applied) and hands the
// chunks to a sink (storage.DB in `argus tsdb import`).
//
// It owns the reading of blocks and the shaping of chunks for the store; it
// does not own the store, its lock, or the command line.
//
// # What is imported
//
//   - Blocks only: the directories named by a ULID with a meta.json. The head
//     (wal/, chunks_head/) of a running or stopped Prometheus is not read;
//     the samples still in it are not imported. A snapshot taken through
//     Prometheus's admin API (POST /api/v1/admin/tsdb/snapshot) writes the
//     head as a block too, so importing a snapshot directory gets everything.
//   - Blocks are merged as Prometheus's compactor merges them: series in
//     label order, chunks of overlapping blocks (vertical compaction, or a
//     compaction whose sources were not deleted yet) merged sample by sample
//     with duplicates dropped, deleted ranges (tombstones) left out.
//   - Float chunks in the XOR encoding are copied byte for byte. A chunk that
//     crosses a multiple of the store's partition range (2h) is re-encoded
//     into one XOR chunk per partition, as the store requires; so is a float
//     chunk of another encoding (XOR2, which carries start timestamps the
//     Argus data model does not have).
//   - Native histogram chunks are skipped and counted: histograms are not in
//     the Argus data model yet.
package promimport
