package storage

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
)

// TestFwdCursorAgreesWithGet looks up present and absent keys, in
// ascending order with gaps of every size, then in random order.
func TestFwdCursorAgreesWithGet(t *testing.T) {
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "f.db"), fileMode, &bbolt.Options{NoSync: true})
	require.NoError(t, err)
	defer db.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	require.NoError(t, db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		for id := uint64(1); id < 5000; id++ {
			if rng.IntN(3) > 0 {
				if err := b.Put(appendID(nil, id), appendID(nil, id*7)); err != nil {
					return err
				}
			}
		}
		return nil
	}))
	require.NoError(t, db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("b"))
		var f fwdCursor
		for id := uint64(0); id < 5100; id += uint64(1 + rng.IntN(20)) {
			require.Equal(t, b.Get(appendID(nil, id)), f.get(b, appendID(nil, id)), "id %d", id)
		}
		for range 2000 {
			id := uint64(rng.IntN(5100))
			require.Equal(t, b.Get(appendID(nil, id)), f.get(b, appendID(nil, id)), "id %d", id)
		}
		return nil
	}))
}
