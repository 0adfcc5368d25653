// Package storage owns the persistent chunk store: the chunks of the series
// of one namespace (the ingester opens one per tenant) in a single bbolt
// file, with an inverted index to select series by label matchers.
//
// It does not own the WAL, the in-memory head, chunk cutting or encoding
// (the ingester builds chunks with Prometheus's chunkenc), tenants, or
// anything on the network.
//
// # On-disk layout (format version 1)
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
//	postings          name 0xff value 0xff id -> (empty)
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
// A postings key ends with the fixed-size id, and names never contain 0xff,
// so the key of name=value is unambiguous even if value contains 0xff (the
// exact-pair lookup keeps keys of prefix+8 bytes only). The keys of one name
// are contiguous, those of one value too, with IDs in ascending order, so
// matcher evaluation merges sorted ID lists.
//
// Chunk keys sort by series, then by end time. Chunks of one series never
// overlap, so the chunks overlapping [mint, maxt] are found with one seek to
// id+mint (the first chunk that ends at or after mint), then read in order
// until one starts after maxt.
//
// Check verifies all of the above.
package storage
