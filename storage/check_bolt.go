package storage

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"runtime/debug"
)

// This file checks the page structure of a bbolt file with plain reads
// before bbolt maps it. bbolt trusts its pages: a zeroed or truncated page
// makes it panic on an assertion, or fault on an address past the end of
// the mapping (which kills the process: a fault is not a panic), or recurse
// for ever on a page that lists itself as its child. CheckDB must report a
// damaged file, so it walks the tree here first, bounds-checking every
// page reference and element, and hands the file to bbolt (tx.Check, then
// the format's own checks) only when the walk found the tree sound.

// bbolt's on-disk constants (go.etcd.io/bbolt/internal/common), for the
// little-endian machines argus runs on.
const (
	boltMagic          = 0xED0CDAED
	boltVersion        = 2
	boltPageHeaderSize = 16
	boltElementSize    = 16 // branch and leaf elements alike
	boltBucketHdrSize  = 16 // root pgid, sequence
	boltBranchFlag     = 0x01
	boltLeafFlag       = 0x02
	boltFreelistFlag   = 0x10
	boltBucketLeafFlag = 0x01
	boltNoFreelist     = ^uint64(0)
	boltMetaChecksumAt = 56 // offset of the checksum in the meta
)

// boltMeta is the part of a bbolt meta page the walk needs.
type boltMeta struct {
	pageSize           uint32
	root, freelist, hw uint64 // hw: the high-water mark, in pages
	txid               uint64
}

// boltWalk is one structural walk of a bbolt file.
type boltWalk struct {
	f        io.ReaderAt
	size     int64
	meta     boltMeta
	seen     map[uint64]bool
	problems []string
}

func (w *boltWalk) addf(format string, args ...any) {
	if len(w.problems) < maxReportedProblems {
		w.problems = append(w.problems, fmt.Sprintf(format, args...))
	}
}

// checkBoltStructure walks the page tree of the bbolt file at path and
// returns its problems wrapped in ErrCorrupt, nil if the tree is sound.
func checkBoltStructure(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	w := &boltWalk{f: f, size: st.Size(), seen: map[uint64]bool{}}
	if err := w.readMeta(); err != nil {
		return corruptf("%v", err)
	}
	if need := int64(w.meta.hw) * int64(w.meta.pageSize); need > w.size {
		return corruptf("truncated: %d bytes, its pages need %d", w.size, need)
	}
	w.walkBucket(w.meta.root, nil, 0)
	if w.meta.freelist != boltNoFreelist {
		w.checkFreelist()
	}
	if len(w.problems) > 0 {
		return corruptError{problems: w.problems, total: len(w.problems)}
	}
	return nil
}

// readMeta picks the meta page bbolt would use: the valid one with the
// higher transaction ID.
func (w *boltWalk) readMeta() error {
	m0, err0 := w.readMetaAt(0)
	pageSize := int64(os.Getpagesize())
	if err0 == nil {
		pageSize = int64(m0.pageSize)
	}
	m1, err1 := w.readMetaAt(pageSize)
	switch {
	case err0 != nil && err1 != nil:
		return fmt.Errorf("both meta pages invalid: %v; %v", err0, err1)
	case err1 != nil || (err0 == nil && m0.txid >= m1.txid):
		w.meta = m0
	default:
		w.meta = m1
	}
	if w.meta.hw < 2 || w.meta.root < 2 || w.meta.root >= w.meta.hw {
		return fmt.Errorf("meta: root page %d outside [2, %d)", w.meta.root, w.meta.hw)
	}
	return nil
}

// readMetaAt reads and validates the meta page at off.
func (w *boltWalk) readMetaAt(off int64) (boltMeta, error) {
	buf := make([]byte, boltPageHeaderSize+boltMetaChecksumAt+8)
	if _, err := w.f.ReadAt(buf, off); err != nil {
		return boltMeta{}, fmt.Errorf("meta page at %d: %v", off, err)
	}
	m := buf[boltPageHeaderSize:]
	le := binary.LittleEndian
	h := fnv.New64a()
	_, _ = h.Write(m[:boltMetaChecksumAt])
	switch {
	case le.Uint32(m) != boltMagic:
		return boltMeta{}, fmt.Errorf("meta page at %d: not a bbolt file", off)
	case le.Uint32(m[4:]) != boltVersion:
		return boltMeta{}, fmt.Errorf("meta page at %d: version %d", off, le.Uint32(m[4:]))
	case le.Uint64(m[boltMetaChecksumAt:]) != h.Sum64():
		return boltMeta{}, fmt.Errorf("meta page at %d: checksum mismatch", off)
	}
	ps := le.Uint32(m[8:])
	if ps < 512 || ps > 1<<20 || ps&(ps-1) != 0 {
		return boltMeta{}, fmt.Errorf("meta page at %d: page size %d", off, ps)
	}
	return boltMeta{pageSize: ps, root: le.Uint64(m[16:]), freelist: le.Uint64(m[32:]),
		hw: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, nil
}

// readPage reads page id with its overflow pages, checking its header.
func (w *boltWalk) readPage(id uint64, stack []uint64) ([]byte, bool) {
	if id < 2 || id >= w.meta.hw {
		w.addf("page %d (path %v): outside [2, %d)", id, stack, w.meta.hw)
		return nil, false
	}
	if w.seen[id] {
		w.addf("page %d (path %v): referenced twice", id, stack)
		return nil, false
	}
	ps := int64(w.meta.pageSize)
	hdr := make([]byte, boltPageHeaderSize)
	if _, err := w.f.ReadAt(hdr, int64(id)*ps); err != nil {
		w.addf("page %d: %v", id, err)
		return nil, false
	}
	le := binary.LittleEndian
	overflow := uint64(le.Uint32(hdr[12:]))
	switch {
	case le.Uint64(hdr) != id:
		w.addf("page %d (path %v): header says page %d", id, stack, le.Uint64(hdr))
		return nil, false
	case id+overflow >= w.meta.hw:
		w.addf("page %d: %d overflow pages pass the high-water mark %d", id, overflow, w.meta.hw)
		return nil, false
	}
	for i := id; i <= id+overflow; i++ {
		w.seen[i] = true
	}
	buf := make([]byte, int64(overflow+1)*ps)
	if _, err := w.f.ReadAt(buf, int64(id)*ps); err != nil {
		w.addf("page %d: %v", id, err)
		return nil, false
	}
	return buf, true
}

// walkBucket walks the B+tree rooted at page id. depth bounds the nesting
// of buckets, which the seen set does not bound for inline buckets.
func (w *boltWalk) walkBucket(id uint64, stack []uint64, depth int) {
	if len(w.problems) >= maxReportedProblems || depth > 64 {
		return
	}
	stack = append(stack, id)
	p, ok := w.readPage(id, stack)
	if !ok {
		return
	}
	flags := binary.LittleEndian.Uint16(p[8:])
	switch flags {
	case boltBranchFlag:
		w.walkBranch(p, id, stack, depth)
	case boltLeafFlag:
		w.walkLeaf(p, id, stack, depth)
	default:
		w.addf("page %d (path %v): type %#x, want branch or leaf", id, stack, flags)
	}
}

// walkBranch checks the elements of branch page p and walks its children.
func (w *boltWalk) walkBranch(p []byte, id uint64, stack []uint64, depth int) {
	le := binary.LittleEndian
	n := int(le.Uint16(p[10:]))
	if n == 0 || boltPageHeaderSize+n*boltElementSize > len(p) {
		w.addf("branch page %d: %d elements do not fit", id, n)
		return
	}
	for i := range n {
		at := boltPageHeaderSize + i*boltElementSize
		pos, ksize := int(le.Uint32(p[at:])), int(le.Uint32(p[at+4:]))
		if at+pos+ksize > len(p) || pos < 0 {
			w.addf("branch page %d: key %d outside the page", id, i)
			return
		}
	}
	for i := range n {
		w.walkBucket(le.Uint64(p[boltPageHeaderSize+i*boltElementSize+8:]), stack, depth)
	}
}

// walkLeaf checks the elements of leaf page p (a page of the file, or the
// page inside an inline bucket's value) and walks the buckets it holds.
func (w *boltWalk) walkLeaf(p []byte, id uint64, stack []uint64, depth int) {
	le := binary.LittleEndian
	n := int(le.Uint16(p[10:]))
	if boltPageHeaderSize+n*boltElementSize > len(p) {
		w.addf("leaf page %d: %d elements do not fit", id, n)
		return
	}
	for i := range n {
		at := boltPageHeaderSize + i*boltElementSize
		flags, pos := le.Uint32(p[at:]), int64(le.Uint32(p[at+4:]))
		ksize, vsize := int64(le.Uint32(p[at+8:])), int64(le.Uint32(p[at+12:]))
		end := int64(at) + pos + ksize + vsize
		if end > int64(len(p)) {
			w.addf("leaf page %d (path %v): element %d outside the page", id, stack, i)
			return
		}
		if flags&boltBucketLeafFlag == 0 {
			continue
		}
		v := p[end-vsize : end]
		if len(v) < boltBucketHdrSize {
			w.addf("leaf page %d: bucket header %d of %d bytes", id, i, len(v))
			return
		}
		if root := le.Uint64(v); root != 0 {
			w.walkBucket(root, stack, depth+1)
			continue
		}
		inline := v[boltBucketHdrSize:]
		if len(inline) < boltPageHeaderSize || le.Uint16(inline[8:]) != boltLeafFlag {
			w.addf("leaf page %d: inline bucket %d is not a leaf page", id, i)
			return
		}
		w.walkLeaf(inline, id, stack, depth+1)
	}
}

// checkFreelist checks the freelist page and that the IDs it lists fit in
// it and in the file.
func (w *boltWalk) checkFreelist() {
	id := w.meta.freelist
	p, ok := w.readPage(id, []uint64{id})
	if !ok {
		return
	}
	le := binary.LittleEndian
	if f := le.Uint16(p[8:]); f != boltFreelistFlag {
		w.addf("freelist page %d: type %#x", id, f)
		return
	}
	n, at := uint64(le.Uint16(p[10:])), uint64(boltPageHeaderSize)
	if n == 0xFFFF {
		n, at = le.Uint64(p[at:]), at+8
	}
	if n > uint64(len(p))/8 || at+n*8 > uint64(len(p)) {
		w.addf("freelist page %d: %d IDs do not fit", id, n)
		return
	}
	for i := range n {
		if free := le.Uint64(p[at+i*8:]); free < 2 || free >= w.meta.hw {
			w.addf("freelist page %d: free page %d outside [2, %d)", id, free, w.meta.hw)
			return
		}
	}
}

// guardBolt runs fn, which reads the bbolt file at path, after the
// structural walk, and turns a panic or memory fault of fn into an error:
// the walk makes them unlikely, not impossible (the file may change under
// it).
func guardBolt(path string, fn func() error) (err error) {
	if err := checkBoltStructure(path); err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("check %s: %w", path, corruptf("bbolt stopped on a damaged page: %v", r))
		}
	}()
	return fn()
}
