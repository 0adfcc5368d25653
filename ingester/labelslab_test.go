package ingester

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// TestLabelSlab checks that label sets carved from a slab are the label
// sets labels.New builds, lengths past the one-byte size included, and
// stay so while more are carved.
func TestLabelSlab(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	st := newStripeSeries()
	var (
		sl    labelSlab
		want  []labels.Labels
		got   []labels.Labels
		names = []string{"__name__", "a", "instance", "job", strings.Repeat("n", 300)}
	)
	for k := range 3000 {
		var b labels.ScratchBuilder
		for _, n := range names {
			if rng.IntN(3) == 0 && n != "__name__" {
				continue
			}
			b.Add(n, strings.Repeat("v", rng.IntN(300))+string(rune('a'+k%26)))
		}
		b.Sort()
		lset := b.Labels()
		syms := st.syms.encode(lset)
		want = append(want, lset)
		got = append(got, sl.decode(st.syms, syms))
	}
	for k := range want {
		require.True(t, labels.Equal(want[k], got[k]), "%s != %s", want[k], got[k])
		require.Equal(t, want[k].String(), got[k].String())
		require.Equal(t, want[k].Hash(), got[k].Hash())
		require.Equal(t, want[k].Get("job"), got[k].Get("job"))
		require.Equal(t, want[k].Len(), got[k].Len())
	}
}
