package ring

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// TestShardToken_Golden pins the sharding function. If this test fails, every
// live cluster would place series on other ingesters: do not update the
// values without a migration plan.
func TestShardToken_Golden(t *testing.T) {
	cases := []struct {
		tenant string
		ls     labels.Labels
		want   uint32
	}{
		{"tenant-a", labels.FromStrings("__name__", "up", "job", "x"), 0x108fab87},
		{"tenant-b", labels.FromStrings("__name__", "up", "job", "x"), 0xe2e9518a},
		{"", labels.EmptyLabels(), 0x33683436},
		{"t", labels.FromStrings("__name__", "http_requests_total", "code", "200", "instance", "10.0.0.1:9090"), 0xb11362d7},
	}
	for _, c := range cases {
		got := ShardToken(c.tenant, c.ls)
		t.Logf("%s %s => %#x", c.tenant, c.ls, got)
		require.Equal(t, c.want, got, "tenant %q labels %s", c.tenant, c.ls)
	}
}

func TestShardTokenProto_MatchesShardToken(t *testing.T) {
	ls := labels.FromStrings("__name__", "up", "instance", "a:1", "job", "x")
	var pl []*arguspb.Label
	ls.Range(func(l labels.Label) { pl = append(pl, &arguspb.Label{Name: l.Name, Value: l.Value}) })
	require.Equal(t, ShardToken("tenant-a", ls), ShardTokenProto("tenant-a", pl))
	require.NotEqual(t, ShardToken("tenant-a", ls), ShardToken("tenant-b", ls))
}

func BenchmarkShardToken(b *testing.B) {
	ls := labels.FromStrings("__name__", "http_requests_total", "code", "200", "instance", "10.0.0.1:9090", "job", "api", "method", "GET", "pod", "api-7d9f8-xk2p1")
	b.ReportAllocs()
	for b.Loop() {
		_ = ShardToken("tenant-a", ls)
	}
}
