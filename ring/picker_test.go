package ring

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPicker_FixesTheClock checks that a Picker places every token as Get
// does at the time Picker was called, whatever the clock says afterwards:
// an instance whose heartbeat goes stale later is still picked.
func TestPicker_FixesTheClock(t *testing.T) {
	d := manualDesc(map[string][]uint32{"a": {100, 400}, "b": {200}, "c": {300}, "d": {350}})
	in := d.Instances["b"]
	in.HeartbeatUnixMillis = testNow.Add(-50 * time.Second).UnixMilli() // stale 10 s after testNow
	d.Instances["b"] = in
	now := testNow
	opts := testOpts(3)
	opts.Now = func() time.Time { return now }
	r := NewRing(d, opts)
	p := r.Picker()
	for _, token := range []uint32{0, 99, 100, 150, 200, 201, 360, 400, 401, 1 << 31} {
		want, err := r.Get(token, nil)
		require.NoError(t, err)
		got, err := p.Get(token, nil)
		require.NoError(t, err)
		require.Equal(t, ids(want), ids(got), "token %d", token)
	}
	now = testNow.Add(20 * time.Second)
	got, err := p.Get(150, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"b", "c", "d"}, ids(got), "b was fresh when the picker was made")
	want, err := r.Get(150, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"c", "d", "a"}, ids(want), "b is stale now")
}
