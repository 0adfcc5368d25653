package storage

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
)

// damageDB builds a closed store with a sealed partition (window [0, 2h))
// and a level-0 one ([2h, 4h)), and returns its directory and the two file
// names, sealed first.
func damageDB(t testing.TB) (dir, sealed, l0 string) {
	t.Helper()
	dir = t.TempDir()
	db, err := OpenDB(dir, DBOptions{NoSync: true})
	require.NoError(t, err)
	require.NoError(t, db.Append("t", genBatch(t, "api", 20, 0, hourMs, 15_000, 30*60_000)))
	require.NoError(t, db.Append("t", genBatch(t, "api", 20, 2*hourMs, 3*hourMs, 15_000, 30*60_000)))
	require.NoError(t, db.Compact(context.Background(), 2*hourMs))
	require.NoError(t, db.Close())
	require.NoError(t, CheckDB(dir))
	files := partitionFiles(t, dir)
	require.Len(t, files, 2)
	require.Regexp(t, `^L1_`, files[1])
	return dir, files[1], files[0]
}

// zeroPages overwrites the file at path from byte 8192 (after bbolt's two
// meta pages) to its end with zeroes.
func zeroPages(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(make([]byte, st.Size()-8192), 8192)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// TestCheckDBDamagedFiles: each kind of damage is reported with the file's
// path and the reason, and CheckDB does not panic on any.
func TestCheckDBDamagedFiles(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, dir, sealed, l0 string) string // returns the damaged file
		want   string
	}{
		{"zeroed pages of a level-0 file", func(t *testing.T, dir, _, l0 string) string {
			zeroPages(t, filepath.Join(dir, l0))
			return l0
		}, `: chunk store corrupt: \d+ problems; page \d+ \(path \[\d+\]\): header says page 0`},
		{"zeroed pages of a sealed file", func(t *testing.T, dir, sealed, _ string) string {
			zeroPages(t, filepath.Join(dir, sealed))
			return sealed
		}, `: chunk store corrupt: \d+ problems; page \d+ \(path \[\d+\]\): header says page 0`},
		{"truncated sealed file", func(t *testing.T, dir, sealed, _ string) string {
			require.NoError(t, os.Truncate(filepath.Join(dir, sealed), 3*4096))
			return sealed
		}, `: chunk store corrupt: 1 problems; truncated: 12288 bytes, its pages need \d+`},
		{"flipped byte in a chunk blob", func(t *testing.T, dir, sealed, _ string) string {
			flipBlobByte(t, filepath.Join(dir, sealed))
			return sealed
		}, `tenant "t": blob 0: chunk store corrupt: 1 problems; blob checksum mismatch`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, sealed, l0 := damageDB(t)
			file := c.damage(t, dir, sealed, l0)
			var err error
			require.NotPanics(t, func() { err = CheckDB(dir) })
			require.ErrorIs(t, err, ErrCorrupt)
			require.Regexp(t, `check (partition |part )?`+regexpQuote(filepath.Join(dir, file))+`.*`+c.want, err.Error())
		})
	}
}

// flipBlobByte flips one byte in the payload of the first chunk blob of
// tenant t in the part at path.
func flipBlobByte(t *testing.T, path string) {
	t.Helper()
	b, err := bbolt.Open(path, fileMode, &bbolt.Options{ReadOnly: true})
	require.NoError(t, err)
	var blob []byte
	require.NoError(t, b.View(func(tx *bbolt.Tx) error {
		blob = bytes.Clone(tx.Bucket(bucketTenants).Bucket([]byte("t")).Get(appendKindKey(nil, kindBlob, 0)))
		return nil
	}))
	require.NoError(t, b.Close())
	require.Greater(t, len(blob), 64)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	at := bytes.Index(data, blob)
	require.GreaterOrEqual(t, at, 0)
	require.Equal(t, -1, bytes.Index(data[at+1:], blob), "blob stored once")
	data[at+len(blob)/2] ^= 0x40
	require.NoError(t, os.WriteFile(path, data, fileMode))
}

// regexpQuote quotes s for a regexp.
func regexpQuote(s string) string {
	var sb bytes.Buffer
	for _, r := range s {
		if bytes.ContainsRune([]byte(`\.+*?()|[]{}^$`), r) {
			sb.WriteByte('\\')
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// TestCheckDBRandomDamage corrupts random bytes of each partition file
// and of meta.db, many times over: CheckDB must return (an error or nil),
// never panic or crash.
func TestCheckDBRandomDamage(t *testing.T) {
	dir, sealed, l0 := damageDB(t)
	rng := rand.New(rand.NewPCG(1, 2))
	rounds := 150
	if testing.Short() {
		rounds = 30
	}
	reported := 0
	for _, name := range []string{sealed, l0, metaFileName} {
		orig, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		for range rounds {
			data := bytes.Clone(orig)
			for range 1 + rng.IntN(8) {
				// Mostly inside the pages in use; sometimes a run of bytes.
				at := rng.IntN(len(data))
				n := 1 + rng.IntN(4)
				if rng.IntN(4) == 0 {
					n = rng.IntN(512)
				}
				for i := at; i < min(at+n, len(data)); i++ {
					data[i] = byte(rng.Uint32())
				}
			}
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, fileMode))
			var err error
			require.NotPanics(t, func() { err = CheckDB(dir) }, name)
			if err != nil {
				reported++
			}
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), orig, fileMode))
	}
	require.NoError(t, CheckDB(dir))
	t.Logf("%d of %d damaged copies reported", reported, 3*rounds)
	require.NotZero(t, reported)
}

// TestCheckDBManifest: a removed partition, a file the manifest does not
// list and a size that disagrees are each reported with the file and the
// reason; OpenDB does not open the unknown file.
func TestCheckDBManifest(t *testing.T) {
	dir, sealed, l0 := damageDB(t)
	prefix := "check db " + dir + ": chunk store corrupt: 1 problems; "

	require.NoError(t, os.Remove(filepath.Join(dir, l0)))
	require.EqualError(t, CheckDB(dir), prefix+"partition "+l0+" is in the manifest but missing from the directory: its data is lost")
	db, err := OpenDB(dir, DBOptions{NoSync: true})
	require.NoError(t, err, "a missing file is logged, not fatal")
	require.NoError(t, db.Close())
	require.EqualError(t, CheckDB(dir), prefix+"partition "+l0+" is in the manifest but missing from the directory: its data is lost")

	dir, sealed, _ = damageDB(t)
	prefix = "check db " + dir + ": chunk store corrupt: 1 problems; "
	data, err := os.ReadFile(filepath.Join(dir, sealed))
	require.NoError(t, err)
	extra := partitionName(1, 0, 2*hourMs-1, 99)
	require.NoError(t, os.WriteFile(filepath.Join(dir, extra), data, fileMode))
	require.EqualError(t, CheckDB(dir), prefix+"partition "+extra+" is not in the manifest")
	db, err = OpenDB(dir, DBOptions{NoSync: true})
	require.NoError(t, err)
	got, err := db.Select("t", all[0], all[1], SelectOptions{})
	require.NoError(t, err)
	require.Len(t, got, 20)
	require.Equal(t, int64(2*20*hourMs/15_000), storedSamples(t, db, "t"), "the unknown copy is not read")
	require.NoError(t, db.Close())
	require.NoError(t, os.Remove(filepath.Join(dir, extra)))
	require.NoError(t, CheckDB(dir))

	f, err := os.OpenFile(filepath.Join(dir, sealed), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.Write(make([]byte, 4096))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.EqualError(t, CheckDB(dir), fmt.Sprintf("%spartition %s has %d bytes, the manifest records %d", prefix, sealed, len(data)+4096, len(data)))
}

// TestOpenDBBuildsManifest: a store whose meta.db has no manifest (written
// before it existed) passes CheckDB, and OpenDB builds the manifest, after
// which a removed file is reported.
func TestOpenDBBuildsManifest(t *testing.T) {
	dir, _, l0 := damageDB(t)
	m, err := bbolt.Open(filepath.Join(dir, metaFileName), fileMode, nil)
	require.NoError(t, err)
	require.NoError(t, m.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket(bucketPartitions) }))
	require.NoError(t, m.Close())
	require.NoError(t, CheckDB(dir))

	db, err := OpenDB(dir, DBOptions{NoSync: true})
	require.NoError(t, err)
	requireManifest(t, db)
	require.NoError(t, db.Close())
	require.NoError(t, CheckDB(dir))
	require.NoError(t, os.Remove(filepath.Join(dir, l0)))
	require.ErrorContains(t, CheckDB(dir), "partition "+l0+" is in the manifest but missing from the directory")
}

// requireManifest checks that the manifest of the open db lists exactly
// its partitions, live, with their level, range and (sealed) size.
func requireManifest(t testing.TB, db *DB) {
	t.Helper()
	man, err := db.readManifest()
	require.NoError(t, err)
	want := map[string]manifestEntry{}
	db.mu.RLock()
	for _, p := range db.parts {
		e, err := db.entryFor(p)
		require.NoError(t, err)
		want[p.name] = e
	}
	db.mu.RUnlock()
	require.Equal(t, want, man)
}

// FuzzCheckDBDamage writes data over a partition file or meta.db at an
// offset: CheckDB must return, with an error or nil, and not panic. go test
// runs the seeds; go test -fuzz=FuzzCheckDBDamage explores.
func FuzzCheckDBDamage(f *testing.F) {
	dir, sealed, l0 := damageDB(f)
	files := []string{sealed, l0, metaFileName}
	orig := make([][]byte, len(files))
	for i, name := range files {
		var err error
		orig[i], err = os.ReadFile(filepath.Join(dir, name))
		require.NoError(f, err)
	}
	f.Add(uint8(0), uint32(4096*2), []byte{0, 0, 0, 0, 0, 0, 0, 0})          // a page ID
	f.Add(uint8(1), uint32(4096*3+10), []byte{0xff, 0xff})                   // an element count
	f.Add(uint8(0), uint32(4096*4+16), []byte{0, 0, 0, 0x10, 0, 0, 0, 0})    // an element's offset
	f.Add(uint8(2), uint32(16), []byte{1})                                   // meta.db's meta page
	f.Add(uint8(1), uint32(4096*2+24), []byte{0x7f, 0xff, 0xff, 0xff, 0xff}) // a child page ID
	f.Fuzz(func(t *testing.T, file uint8, at uint32, data []byte) {
		i := int(file) % len(files)
		damaged := bytes.Clone(orig[i])
		off := int(at) % len(damaged)
		copy(damaged[off:], data)
		path := filepath.Join(dir, files[i])
		require.NoError(t, os.WriteFile(path, damaged, fileMode))
		defer func() { require.NoError(t, os.WriteFile(path, orig[i], fileMode)) }()
		require.NotPanics(t, func() { _ = CheckDB(dir) })
	})
}
