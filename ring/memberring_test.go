package ring

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMemberRing_Owner(t *testing.T) {
	var none *MemberRing
	require.Empty(t, none.Owner(1))
	require.Empty(t, NewMemberRing("s", nil).Owner(1))
	require.Equal(t, "only", NewMemberRing("s", []string{"only"}).Owner(1))

	three := []string{"a", "b", "c"}
	r1, r2 := NewMemberRing("s", three), NewMemberRing("s", three)
	owned := map[string]int{}
	for tok := uint32(0); tok < 1<<31; tok += 1 << 20 {
		o := r1.Owner(tok)
		require.Equal(t, o, r2.Owner(tok), "the same members give the same owner")
		owned[o]++
	}
	// Every member owns a share; with 128 tokens each no share is tiny.
	require.Len(t, owned, 3)
	for m, n := range owned {
		require.Greater(t, n, 2048/3/2, "member %s owns %d of 2048 probes", m, n)
	}
	require.Equal(t, three, r1.Members())
}

func TestMemberTokens(t *testing.T) {
	a := MemberTokens("seed", "m1")
	require.Len(t, a, MemberTokensPerMember)
	require.Equal(t, a, MemberTokens("seed", "m1"))
	require.NotEqual(t, a, MemberTokens("seed", "m2"))
	require.NotEqual(t, a, MemberTokens("other", "m1"), "the seed separates roles")
	require.IsNonDecreasing(t, a)
}
