package storage

import (
	"bytes"

	"go.etcd.io/bbolt"
)

// fwdCursor looks up keys of one bucket that mostly come in ascending
// order, as series IDs do during a select: when the key sought is a few
// entries after the last one found it steps there with Next instead of a
// B+tree search from the root. Keys in any order still give the right
// answer. It must not be used across writes to its bucket.
type fwdCursor struct {
	c    *bbolt.Cursor
	k, v []byte // the cursor's position; nil before the first lookup
}

// fwdSteps is how many Next calls a lookup tries before it searches.
const fwdSteps = 8

// get returns the value of key, or nil.
func (f *fwdCursor) get(b *bbolt.Bucket, key []byte) []byte {
	if f.c == nil {
		f.c = b.Cursor()
	}
	if f.k != nil && bytes.Compare(f.k, key) <= 0 {
		for range fwdSteps {
			switch c := bytes.Compare(f.k, key); {
			case c == 0:
				return f.v
			case c > 0:
				return nil
			}
			if f.k, f.v = f.c.Next(); f.k == nil {
				return nil // past the last key; the next lookup searches
			}
		}
	}
	f.k, f.v = f.c.Seek(key)
	if f.k != nil && bytes.Equal(f.k, key) {
		return f.v
	}
	return nil
}
