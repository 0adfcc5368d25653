package scraper

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// segmentLog is the write-ahead log of a Queue: numbered segment files in
// one directory, appended to at the end of the last and read from the
// acknowledged position in the first. Segments before the position are
// deleted as it passes them, so the first segment is always the one being
// read. It is not safe for concurrent use (Queue guards it with its mutex).
//
// A record is [length uint32][crc32c uint32][payload], payload being
// [uvarint tenant length][tenant][request body]. Each record is written by
// one write(2), so a killed process (kill -9) leaves whole records in the
// page cache, which the next start reads; segments are fsynced when cut and
// at close, not per record, as Prometheus's agent WAL does: a machine crash
// can lose the last unsynced segment's records.
//
// The position ([segment uint64][offset uint64][crc32c uint32]) is
// rewritten in place after every acknowledged send. A kill between a send
// and its acknowledgement sends the batch again at the next start; the
// receiver sees the same samples twice, which Prometheus and Argus accept
// as duplicates of equal value.
type segmentLog struct {
	dir      string
	segBytes int64     // a segment is cut once it holds this many bytes
	segs     []segment // on disk, oldest first; the last is appended to
	off      int64     // read position in segs[0]
	w        *os.File  // the last segment
	r        *os.File  // segs[0], opened for reading; nil if not open
	rNum     uint64    // the segment r is
	pos      *os.File
	total    int64 // bytes in segs from off on
}

type segment struct {
	num  uint64
	size int64
}

const (
	recordHeader = 8
	positionSize = 20
	// maxRecord bounds one record (a scrape's request compressed); a
	// longer length read back is corruption.
	maxRecord = 256 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks a record that does not decode; the rest of its segment
// is skipped.
var errCorrupt = errors.New("corrupt record")

func segmentName(dir string, n uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d", n))
}

// openLog opens the log in dir (creating it), drops the segments before
// the saved position and starts a new segment to append to: the tail of a
// segment written by a killed process is read, never appended to.
func openLog(dir string, segBytes int64) (*segmentLog, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	l := &segmentLog{dir: dir, segBytes: segBytes}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		n, err := strconv.ParseUint(e.Name(), 10, 64)
		if err != nil || e.IsDir() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		l.segs = append(l.segs, segment{num: n, size: info.Size()})
	}
	slices.SortFunc(l.segs, func(a, b segment) int { return compareUint(a.num, b.num) })
	if err := l.openPosition(); err != nil {
		return nil, err
	}
	next := uint64(0)
	if len(l.segs) > 0 {
		next = l.segs[len(l.segs)-1].num + 1
	}
	if err := l.create(next); err != nil {
		return nil, err
	}
	for _, s := range l.segs {
		l.total += s.size
	}
	l.total -= l.off
	return l, nil
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// openPosition reads the saved position and deletes the segments before
// it. A missing or unreadable position starts at the first segment.
func (l *segmentLog) openPosition() error {
	f, err := os.OpenFile(filepath.Join(l.dir, "position"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	l.pos = f
	var b [positionSize]byte
	if _, err := f.ReadAt(b[:], 0); err != nil || crc32.Checksum(b[:16], crcTable) != binary.LittleEndian.Uint32(b[16:]) {
		return nil
	}
	num, off := binary.LittleEndian.Uint64(b[0:]), int64(binary.LittleEndian.Uint64(b[8:]))
	for len(l.segs) > 0 && l.segs[0].num < num {
		if err := os.Remove(segmentName(l.dir, l.segs[0].num)); err != nil {
			return err
		}
		l.segs = l.segs[1:]
	}
	if len(l.segs) > 0 && l.segs[0].num == num && off <= l.segs[0].size {
		l.off = off
	}
	return nil
}

// create starts segment n and makes it the one appended to.
func (l *segmentLog) create(n uint64) error {
	f, err := os.OpenFile(segmentName(l.dir, n), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	l.w = f
	l.segs = append(l.segs, segment{num: n})
	return nil
}

// cut syncs and closes the last segment and starts the next.
func (l *segmentLog) cut() error {
	if err := errors.Join(l.w.Sync(), l.w.Close()); err != nil {
		return err
	}
	return l.create(l.segs[len(l.segs)-1].num + 1)
}

// append writes one record of tenant and body, cutting a new segment first
// if the last is full.
func (l *segmentLog) append(tenantID string, body []byte) (int64, error) {
	if l.segs[len(l.segs)-1].size >= l.segBytes {
		if err := l.cut(); err != nil {
			return 0, err
		}
	}
	last := &l.segs[len(l.segs)-1]
	payload := binary.AppendUvarint(make([]byte, recordHeader, recordHeader+binary.MaxVarintLen64+len(tenantID)+len(body)), uint64(len(tenantID)))
	payload = append(append(payload, tenantID...), body...)
	binary.LittleEndian.PutUint32(payload[0:], uint32(len(payload)-recordHeader))
	binary.LittleEndian.PutUint32(payload[4:], crc32.Checksum(payload[recordHeader:], crcTable))
	n, err := l.w.Write(payload)
	last.size += int64(n)
	l.total += int64(n)
	return int64(n), err
}

// record is one request read back from the log.
type record struct {
	tenant string
	body   []byte
}

// batch is what read returns: the records that follow each other in
// segment num, from the read position to end.
type batch struct {
	num     uint64
	end     int64
	records []record
	dropped int64 // bytes of a corrupt segment's rest, skipped
}

// read returns the records after the read position, until maxBytes of
// them. A finished segment that is not the last is
// deleted on the way. An empty batch means the log is read to its end.
// A corrupt record (a torn write of a killed process, or a damaged disk)
// skips the rest of its segment and returns errCorrupt with what was read
// before it.
func (l *segmentLog) read(maxBytes int) (batch, error) {
	for l.off >= l.segs[0].size && len(l.segs) > 1 {
		if err := l.dropFirst(); err != nil {
			return batch{}, err
		}
	}
	s := l.segs[0]
	b := batch{num: s.num, end: l.off}
	if b.end >= s.size {
		return b, nil
	}
	if err := l.openReader(s.num); err != nil {
		return b, err
	}
	size := 0
	for b.end < s.size && size < maxBytes {
		rec, n, err := readRecord(l.r, b.end, s.size)
		if err != nil {
			// Nothing after a corrupt record can be trusted in this segment.
			// Appends go on in a new segment.
			b.dropped = s.size - b.end
			l.segs[0].size = b.end
			l.total -= b.dropped
			if len(l.segs) == 1 {
				if cerr := l.cut(); cerr != nil {
					return b, cerr
				}
			}
			return b, fmt.Errorf("%s at offset %d: %w", segmentName(l.dir, s.num), b.end, err)
		}
		b.records = append(b.records, rec)
		b.end += n
		size += len(rec.body)
	}
	return b, nil
}

func (l *segmentLog) openReader(num uint64) error {
	if l.r != nil && l.rNum == num {
		return nil
	}
	if l.r != nil {
		_ = l.r.Close()
	}
	f, err := os.Open(segmentName(l.dir, num))
	if err != nil {
		l.r = nil
		return err
	}
	l.r, l.rNum = f, num
	return nil
}

// readRecord reads the record at off of a segment of size bytes and
// returns it and its length on disk.
func readRecord(f io.ReaderAt, off, size int64) (record, int64, error) {
	var h [recordHeader]byte
	if size-off < recordHeader {
		return record{}, 0, errCorrupt
	}
	if _, err := f.ReadAt(h[:], off); err != nil {
		return record{}, 0, err
	}
	n := int64(binary.LittleEndian.Uint32(h[0:]))
	if n > maxRecord || size-off-recordHeader < n {
		return record{}, 0, errCorrupt
	}
	p := make([]byte, n)
	if _, err := f.ReadAt(p, off+recordHeader); err != nil {
		return record{}, 0, err
	}
	if crc32.Checksum(p, crcTable) != binary.LittleEndian.Uint32(h[4:]) {
		return record{}, 0, errCorrupt
	}
	tl, k := binary.Uvarint(p)
	if k <= 0 || uint64(len(p)-k) < tl {
		return record{}, 0, errCorrupt
	}
	return record{tenant: string(p[k : k+int(tl)]), body: p[k+int(tl):]}, recordHeader + n, nil
}

// ack moves the read position past a batch read from segment num up to
// end, and saves it. A batch whose segment was dropped meanwhile (the log
// was full) moves nothing.
func (l *segmentLog) ack(num uint64, end int64) error {
	if l.segs[0].num != num || end <= l.off {
		return nil
	}
	l.total -= end - l.off
	l.off = end
	var b [positionSize]byte
	binary.LittleEndian.PutUint64(b[0:], num)
	binary.LittleEndian.PutUint64(b[8:], uint64(end))
	binary.LittleEndian.PutUint32(b[16:], crc32.Checksum(b[:16], crcTable))
	_, err := l.pos.WriteAt(b[:], 0)
	return err
}

// dropFirst deletes the first segment, read or not, and moves the read
// position to the start of the next. It needs at least two segments.
func (l *segmentLog) dropFirst() error {
	s := l.segs[0]
	if l.r != nil && l.rNum == s.num {
		_ = l.r.Close()
		l.r = nil
	}
	if err := os.Remove(segmentName(l.dir, s.num)); err != nil {
		return err
	}
	l.total -= s.size - l.off
	l.segs = l.segs[1:]
	l.off = 0
	return nil
}

// dropOldest deletes the oldest segment when the log holds more than one,
// and returns the unread bytes dropped (zero if there was one segment).
func (l *segmentLog) dropOldest() (int64, error) {
	if len(l.segs) < 2 {
		return 0, nil
	}
	unread := l.segs[0].size - l.off
	return unread, l.dropFirst()
}

// close syncs and closes the files.
func (l *segmentLog) close() error {
	err := errors.Join(l.w.Sync(), l.w.Close(), l.pos.Close())
	if l.r != nil {
		err = errors.Join(err, l.r.Close())
	}
	return err
}
