package storage

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// crashPoint is a copy of the DB directory taken at one step, as kill -9
// would leave it there.
type crashPoint struct {
	phase, step, dir string
}

// TestDBCrashAtEveryStep copies the directory at every step of flushes, a
// compaction (sealing and merging), CleanTombstones, a retention pass and a
// tenant deletion, then opens each copy and checks: every chunk is present
// exactly once (no two chunks of a series overlap across partitions),
// deleted data never comes back, the manifest lists exactly the partitions
// opened, and after the interrupted operation is run again the contents are
// exact. CheckDB runs on every copy.
func TestDBCrashAtEveryStep(t *testing.T) {
	ctx := context.Background()
	now := time.UnixMilli(50 * hourMs)
	defer func(c, b int) { partCommitBytes, partBlobTarget = c, b }(partCommitBytes, partBlobTarget)
	partCommitBytes, partBlobTarget = 1, 1024 // commits within a part: crash points inside writePart
	var (
		phase  string
		points []crashPoint
		src    string
	)
	opts := DBOptions{Now: func() time.Time { return now }, SealStep: 10 * time.Minute}
	opts.testHook = func(step string) error {
		if phase != "" {
			points = append(points, crashPoint{phase, step, copyDir(t, src)})
		}
		return nil
	}
	db, dir := newTestDB(t, opts)
	src = dir
	tenants := []string{"a", "b"}
	models := map[string]model{}
	m := model{}
	// Hourly flushes, but [5h, 8h) in three batches, the second spanning
	// two windows: crash points are taken in those two.
	var ranges [][2]int64
	for h := int64(0); h < 28; h++ {
		switch {
		case h == 5:
			ranges = append(ranges, [2]int64{5 * hourMs, 5*hourMs + hourMs/2}, [2]int64{5*hourMs + hourMs/2, 6*hourMs + hourMs/2},
				[2]int64{6*hourMs + hourMs/2, 8 * hourMs})
		case h == 6 || h == 7:
		default:
			ranges = append(ranges, [2]int64{h * hourMs, (h + 1) * hourMs})
		}
	}
	for i, r := range ranges {
		if r[0] == 5*hourMs || r[0] == 5*hourMs+hourMs/2 {
			phase = fmt.Sprintf("append-%d", i)
		}
		for _, tenant := range tenants {
			batch := genBatch(t, tenant, 3, r[0], r[1], 60_000, 30*60_000)
			models[phase+"-before-"+tenant] = m.clone()
			require.NoError(t, db.Append(tenant, batch))
			m.add(t, tenant, batch)
			models[phase+"-after-"+tenant] = m.clone()
		}
		phase = ""
	}
	// Tenant c has data only in [26h, 27h), gone by retention.
	cBatch := genBatch(t, "c", 2, 26*hourMs, 27*hourMs, 60_000, 30*60_000)
	require.NoError(t, db.Append("c", cBatch))
	del := Tombstone{4 * hourMs, 25 * hourMs, []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "instance", "host-[02]")}}
	require.NoError(t, db.DeleteSeries("a", del))
	m.deleteRange("a", del.MinTime, del.MaxTime, del.Matchers...)
	models["deleted"] = m.clone()

	phase = "compact"
	require.NoError(t, db.Compact(ctx, 26*hourMs))
	// A second delete, after compaction, lands in the day, in a sealed
	// window and in a level-0 one: CleanTombstones rewrites all three.
	del2 := Tombstone{10 * hourMs, 27 * hourMs, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "instance", "host-1")}}
	require.NoError(t, db.DeleteSeries("a", del2))
	m.deleteRange("a", del2.MinTime, del2.MaxTime, del2.Matchers...)
	// Deletes inside one chunk (its first and last samples kept) in the
	// day, a sealed window and a level-0 one: clean must re-encode them
	// before it drops the tombstones.
	for _, from := range []int64{3 * hourMs, 25 * hourMs, 26 * hourMs} {
		d := Tombstone{from + 10*60_000, from + 12*60_000, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "instance", "host-0")}}
		require.NoError(t, db.DeleteSeries("a", d))
		m.deleteRange("a", d.MinTime, d.MaxTime, d.Matchers...)
	}
	models["deleted2"] = m.clone()
	phase = "clean"
	require.NoError(t, db.CleanTombstones(ctx, func(string) int64 { return 28 * hourMs }))
	require.Empty(t, db.Tombstones("a"))
	policy := RetentionPolicy{Period: func(tenant string) time.Duration {
		switch tenant {
		case "a":
			return 23 * time.Hour // cut-off 27h: the day and [24h, 26h) gone for a
		case "c":
			return time.Hour // all of c gone
		}
		return 25 * time.Hour // cut-off 25h: the day gone for b too
	}}
	phase = "retention"
	require.NoError(t, db.ApplyRetention(ctx, policy))
	m.deleteRange("a", math.MinInt64, 27*hourMs-1)
	m.deleteRange("b", math.MinInt64, 25*hourMs-1)
	models["retained"] = m.clone()
	phase = "delete-tenant"
	require.NoError(t, db.DeleteTenant("b"))
	phase = ""
	delete(m, "b")
	// Early seals of a window that has not ended (SealStep 10 minutes):
	// three parts written alone, the second with crash points, then a
	// fourth seal merges them with the level-0 file, with crash points.
	for k := range int64(4) {
		from := 28*hourMs + k*10*60_000
		batch := genBatch(t, "a", 3, from, from+10*60_000, 60_000, 10*60_000)
		require.NoError(t, db.Append("a", batch))
		m.add(t, "a", batch)
		if k == 1 || k == 3 {
			phase = fmt.Sprintf("earlyseal-%d", k)
			models[phase] = m.clone()
		}
		require.NoError(t, db.Compact(ctx, from+10*60_000))
		phase = ""
	}
	for _, tenant := range tenants {
		requireSelect(t, db, m, tenant, all[0], all[1])
	}

	seen := map[string]int{}
	for _, p := range points {
		seen[strings.Fields(p.step)[0]]++
	}
	t.Logf("%d crash points: %v", len(points), seen)
	for _, step := range []string{"append:committed", "append:created", "seal:written", "seal:removed", "seal:part-rename",
		"compact:written", "compact:removed", "compact:part-commit", "clean:written", "clean:removed", "clean:purged", "clean:dropped",
		"retention:removed", "retention:written", "delete:recorded", "delete:dropped", "delete:removed", "delete:cleared",
		"append:file", "seal:manifest", "seal:forgotten", "compact:manifest", "compact:forgotten", "clean:manifest",
		"retention:manifest", "retention:forgotten", "delete:manifest", "earlyseal:written", "earlyseal:manifest",
		"earlyseal:removed", "earlyseal:forgotten"} {
		require.NotZero(t, seen[step], "no crash point at %s", step)
	}
	for _, p := range points {
		t.Run(p.phase+"/"+p.step, func(t *testing.T) {
			verifyCrashPoint(t, p, models, policy, opts.Now)
		})
	}
}

// verifyCrashPoint opens the copy of one crash point and checks it.
func verifyCrashPoint(t *testing.T, p crashPoint, models map[string]model, policy RetentionPolicy, now func() time.Time) {
	ctx := context.Background()
	db := openTestDB(t, p.dir, DBOptions{Now: now})
	requireManifest(t, db)
	for _, tenant := range []string{"a", "b"} {
		requireNoOverlap(t, db, tenant)
	}
	switch {
	case strings.HasPrefix(p.phase, "append-"):
		for _, tenant := range []string{"a", "b"} {
			requireBetween(t, db, tenant, models[p.phase+"-before-"+tenant], models[p.phase+"-after-"+tenant])
		}
	case p.phase == "compact" || p.phase == "clean":
		want := models["deleted"]
		if p.phase == "clean" {
			want = models["deleted2"]
		}
		for _, tenant := range []string{"a", "b"} {
			requireSelect(t, db, want, tenant, all[0], all[1])
		}
		require.NoError(t, db.Compact(ctx, 26*hourMs))
		if p.phase == "clean" {
			// Run again, the clean leaves the deleted samples out for good.
			require.NoError(t, db.CleanTombstones(ctx, func(string) int64 { return 28 * hourMs }))
			require.Empty(t, db.Tombstones("a"))
			requireSelect(t, db, want, "a", all[0], all[1])
			require.Equal(t, want.samples("a"), storedSamples(t, db, "a"))
		}
	case p.phase == "retention":
		require.NoError(t, db.ApplyRetention(ctx, policy))
		for _, tenant := range []string{"a", "b"} {
			requireSelect(t, db, models["retained"], tenant, all[0], all[1])
		}
	case p.phase == "delete-tenant":
		requireSelect(t, db, models["retained"], "a", all[0], all[1])
		requireSelect(t, db, model{}, "b", all[0], all[1])
		tenants, err := db.Tenants()
		require.NoError(t, err)
		require.Equal(t, []string{"a"}, tenants)
		require.NoError(t, db.Compact(ctx, 26*hourMs)) // finishes the deletion
		requireSelect(t, db, model{}, "b", all[0], all[1])
		for _, part := range db.Partitions() {
			require.Equal(t, 1, part.Tenants, part.Path)
		}
	case strings.HasPrefix(p.phase, "earlyseal-"):
		want := models[p.phase]
		requireSelect(t, db, want, "a", all[0], all[1])
		require.NoError(t, db.Compact(ctx, 28*hourMs+40*60_000)) // seals what the crash left in level 0
		requireSelect(t, db, want, "a", all[0], all[1])
		require.Equal(t, want.samples("a"), storedSamples(t, db, "a"))
		var window []string
		for _, part := range db.Partitions() {
			if part.MinTime == 28*hourMs {
				window = append(window, filepath.Base(part.Path))
				require.Equal(t, 1, part.Level, part.Path)
			}
		}
		require.LessOrEqual(t, len(window), maxEarlyParts, "parts of the window: %v", window)
	default:
		t.Fatalf("unknown phase %s", p.phase)
	}
	for _, tenant := range []string{"a", "b"} {
		requireNoOverlap(t, db, tenant)
	}
	requireManifest(t, db)
}

// clone returns a deep copy of m.
func (m model) clone() model {
	out := model{}
	for tenant, ss := range m {
		out[tenant] = map[string]*modelSeries{}
		for k, s := range ss {
			out[tenant][k] = &modelSeries{lbls: s.lbls, samples: append([]sample(nil), s.samples...)}
		}
	}
	return out
}

// requireNoOverlap checks that no two chunks of one series overlap across
// the partitions: a chunk stored twice would.
func requireNoOverlap(t testing.TB, db *DB, tenant string) {
	t.Helper()
	db.mu.RLock()
	defer db.mu.RUnlock()
	type span struct {
		mint, maxt int64
		part       string
	}
	spans := map[string][]span{}
	for _, p := range db.parts {
		if db.hidden(p, tenant) {
			continue
		}
		ss, err := p.r.Select(tenant, math.MinInt64, math.MaxInt64, SelectOptions{}, nil)
		require.NoError(t, err)
		for _, s := range ss {
			for _, c := range s.Chunks {
				for _, o := range spans[s.Labels.String()] {
					require.False(t, c.MinTime <= o.maxt && c.MaxTime >= o.mint,
						"series %s: chunk [%d, %d] of %s overlaps [%d, %d] of %s", s.Labels, c.MinTime, c.MaxTime, p.name, o.mint, o.maxt, o.part)
				}
				spans[s.Labels.String()] = append(spans[s.Labels.String()], span{c.MinTime, c.MaxTime, p.name})
			}
		}
	}
}

// requireBetween checks that tenant holds every sample of before and only
// samples of after: a flush cut short by a crash is partly written.
func requireBetween(t testing.TB, db *DB, tenant string, before, after model) {
	t.Helper()
	got, err := db.Select(tenant, math.MinInt64, math.MaxInt64, SelectOptions{})
	require.NoError(t, err)
	have := map[string]map[int64]float64{}
	for _, s := range got {
		have[s.Labels.String()] = map[int64]float64{}
		for _, c := range s.Chunks {
			for _, x := range chunkSamples(t, c) {
				have[s.Labels.String()][x.t] = x.v
			}
		}
	}
	for k, s := range before[tenant] {
		for _, x := range s.samples {
			v, ok := have[k][x.t]
			require.True(t, ok && v == x.v, "sample %s@%d lost", k, x.t)
		}
	}
	for k, ts := range have {
		want := map[int64]float64{}
		if s := after[tenant][k]; s != nil {
			for _, x := range s.samples {
				want[x.t] = x.v
			}
		}
		for ts, v := range ts {
			w, ok := want[ts]
			require.True(t, ok && w == v, "sample %s@%d never written", k, ts)
		}
	}
}
