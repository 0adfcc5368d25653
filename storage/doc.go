// Package storage owns the persistent chunk stores: DB, the partitioned
// store of one ingester holding every tenant's chunks in time partitions
// shared by the tenants, and ChunkStore, the older single-file store of one
// namespace (format 1), whose layout DB's level-0 files reuse per tenant.
//
// It does not own the WAL, the in-memory head, chunk cutting or encoding
// (the ingester builds chunks with Prometheus's chunkenc), tenant limits or
// retention settings, or anything on the network.
//
// # DB layout (format 2)
//
// A DB directory holds meta.db and partition files named
//
//	L<level>_<minT>_<maxT>_<seq>.db
//
// where [minT, maxT] is the window the partition covers (inclusive, Unix
// ms), and seq is unique and increasing (one more than the highest in the
// directory or the manifest at open), so that a name is never reused: a compaction output
// names its sources, and a source name reused by a newer file would make
// OpenDB delete that file.
//
//   - Level 0: one mutable bbolt file per PartitionRange window (2h,
//     aligned), created by the first Append into the window and appended to
//     by flushes. At most one level-0 file per window receives appends; a
//     window sealed and then appended to again gets a new one.
//   - Level 1: a level-0 file sealed by Compact once its window ended,
//     or early, while the window is still written to (DBOptions.SealStep
//     and SealIdle; the window's later flushes go to a new level-0 file);
//     written by writePart (see part.go) in label order, with compressed
//     chunk blobs (parts written before that are raw, and still read). An
//     early seal writes up to three parts per window, then merges them;
//     the seal of an ended window merges its parts and its level-0 file,
//     so an ended window has one level-1 part.
//   - Level 2: the sealed partitions of one CompactedRange window (24h)
//     merged by Compact, compressed too. A late level-1 file in a compacted
//     window is merged with it into a new level-2 file. A day that has not
//     ended gets a level-2 file from its start to its last sealed window
//     once four windows are sealed, merged again every four.
//
// Rewrites (by CleanTombstones, retention or DeleteTenant) write a new file
// of the same level and window. Every sealed file's meta lists the files
// it replaces; OpenDB deletes those of each complete file, and every
// "*.tmp" file (an output cut short).
//
// A level-0 file has the buckets
//
//	meta     "format_version" -> uint64(2), "kind" -> "l0"
//	tenants  <tenant> -> bucket of the tenant:
//	           series, series_time, series_by_labels, postings
//	                        as in a format 1 file (below)
//	           chunks       seq(8) -> encoding(1) data
//	           chunk_refs   id -> {uvarint(seq) varint(minT - previous maxT)
//	                        uvarint(maxT - minT)}...
//	           label_values  name 0xff value -> (empty)
//
// Chunks are keyed by the sequence of the chunks bucket, so that a flush
// appends them at the right edge of the bucket: pages fill up, and the
// pages of earlier flushes are not rewritten (with format 1's keys by
// series, every flush touched every leaf, and bbolt's copy-on-write left as
// many pages freed in the file). chunk_refs lists each series' chunks in
// time order (the first minT is relative to 0); reading a series' chunks in
// a range is one lookup of its refs and one per chunk.
//
// label_values holds one key per label pair of the tenant's series in the
// file, added with new series and removed with the last series holding it,
// so that LabelNames and LabelValues without matchers read it alone
// instead of the postings of every series. A partition that overlaps a
// query range contributes all its names and values, as a Prometheus block
// does.
//
// meta.db has the buckets
//
//	tombstones       <tenant> -> bucket: seq(8) -> minT(8) maxT(8)
//	                   {type(1) uvarint(len) name uvarint(len) value}...
//	retention        <tenant> -> cut-off(8)
//	deleted_tenants  <tenant> -> seq(8) l0done(1)
//	partitions       <file name> -> state(1) uvarint(level) varint(minT)
//	                   varint(maxT) uvarint(size)
//
// with times encoded as in format 1. A tombstone masks its range in every
// series its matchers match at read time. A retention cut-off hides the
// tenant's samples before it. A deleted_tenants record is a DeleteTenant in
// progress: sealed files with a sequence up to seq hide the tenant until
// they are rewritten without it; l0done says its level-0 buckets are gone
// (OpenDB deletes them again if not). partitions is the manifest: every
// partition file the DB has, with state 0 (live) or 1 (being deleted:
// OpenDB finishes the deletion), and size the bytes of a sealed file (0 for
// a level-0 file, which grows). A meta.db without it was written before it
// existed; OpenDB builds it from the files. See db_manifest.go for its
// order against the files.
//
// # ChunkStore layout (format version 1)
//
// All integers are big-endian. Times are Unix milliseconds stored as
// uint64(t) XOR 1<<63, so that byte order is numeric order, negative times
// included. Series IDs are 8 bytes, assigned from the sequence of the series
// bucket, starting at 1 and never reused.
//
//	meta              "format_version" -> uint64(1)
//	series            id -> labels
//	series_time       id -> minT(8) maxT(8)
//	series_by_labels  labels -> id
//	postings          name 0xff value 0xff id -> {uvarint(id - previous id)}...
//	chunks            id maxT(8) -> uvarint(maxT-minT) encoding(1) data
//
// labels is the canonical encoding of a label set: for each label in name
// order, uvarint(len(name)) name uvarint(len(value)) value. Labels with an
// empty value are not stored (Prometheus treats them as absent), and a name
// may not be empty or contain byte 0xff.
//
// series_time is kept apart from the immutable labels so that Append, which
// updates maxT of every series it touches, rewrites small values on densely
// packed pages instead of whole label sets. It also lets the time filter of
// Select, LabelNames and LabelValues skip series without reading labels.
// series_by_labels makes the lookup of a series by its labels, on every
// Append and LastTime, one B+tree search. Every series has at least one
// chunk, and series_time spans exactly its chunks, so LastTime reads maxT
// from series_time.
//
// A postings entry lists series of one label pair: the first ID is in the
// key, the others follow in the value as increasing gaps. An Append writes
// one entry per pair of the series it creates (so a pair has an entry per
// transaction that created series with it); files written before that hold
// one entry per pair and series, with an empty value, which read the same.
// Removing a series rewrites the entries that list it, under their first
// remaining ID. A postings key ends with the fixed-size id, and names never
// contain 0xff, so the key of name=value is unambiguous even if value
// contains 0xff (the exact-pair lookup keeps keys of prefix+8 bytes only).
// The keys of one name are contiguous, those of one value too, in
// ascending order of ID, and series IDs only grow, so the entries of a pair
// list disjoint ascending runs and matcher evaluation merges sorted ID
// lists.
//
// Chunk keys sort by series, then by end time. Chunks of one series never
// overlap, so the chunks overlapping [mint, maxt] are found with one seek to
// id+mint (the first chunk that ends at or after mint), then read in order
// until one starts after maxt.
//
// Check verifies all of the above for a ChunkStore file; CheckDB verifies a
// DB directory: the same for each tenant of a level-0 file, label_values
// against the postings, part.Check for sealed files, meta.db, that the files
// are those the manifest lists, and that no crash leftover remains. It first
// walks each bbolt file's pages with bounds-checked reads, so that a damaged
// file is reported rather than crashing bbolt.
package storage
