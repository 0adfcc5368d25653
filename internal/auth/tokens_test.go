package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/tenant"
)

func TestHashToken(t *testing.T) {
	// The values of `printf %s test | sha256sum` and of the doc example.
	require.Equal(t, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", HashToken("test"))
	require.Equal(t, "a70bf50e531ce1a817561f2f5d5b6645d4e806becf58ccc5e8cf6b8045a090a8", HashToken("token-a"))
	require.Equal(t, "4daa6091041c50073c7d78d0f8b0831d6e4885a8614df630f088c9d36999e245", HashToken("token-ab"))
}

func TestParseTokens_Valid(t *testing.T) {
	s, err := parseTokens([]byte(`
tokens:
  - sha256: "`+HashToken("one")+`"
    tenants: [team-a]
  - sha256: "`+strings.ToUpper(HashToken("two"))+`"  # upper-case hex is fine
    tenants: [team-b, team-a, team-b]
    admin: true
`), "")
	require.NoError(t, err)
	require.Equal(t, 0, s.lookup("one"))
	require.Equal(t, 1, s.lookup("two"))
	require.Equal(t, -1, s.lookup("three"))
	require.Equal(t, -1, s.lookup(""))
	require.Equal(t, []string{"team-a", ""}, s.single)
	require.True(t, s.allows(1, []string{"team-a", "team-b"}))
	require.False(t, s.allows(0, []string{"team-a", "team-b"}))
	require.Equal(t, []bool{false, true}, s.admin, "admin is optional and false by default")
}

func TestParseTokens_Invalid(t *testing.T) {
	const pasted = "my-raw-secret-token"
	for name, tc := range map[string]struct {
		content, require string
		msg              string
	}{
		"not yaml":        {"tokens: [", "", "yaml"},
		"unknown field":   {"tokens:\n  - sha256: " + HashToken("a") + "\n    token: x\n    tenants: [a]\n", "", "field token not found"},
		"unknown top key": {"users: []\n", "", "field users not found"},
		"empty file":      {"", "", "lists no tokens"},
		"no tokens":       {"tokens: []\n", "", "lists no tokens"},
		"not hex":         {"tokens:\n  - sha256: " + pasted + "\n    tenants: [a]\n", "", "token 1: sha256 must be 64 hex digits"},
		"short hash":      {"tokens:\n  - sha256: " + HashToken("a")[:62] + "\n    tenants: [a]\n", "", "token 1: sha256 must be 64 hex digits"},
		"duplicate hash": {"tokens:\n  - sha256: " + HashToken("a") + "\n    tenants: [a]\n  - sha256: " + HashToken("b") + "\n    tenants: [b]\n" +
			"  - sha256: " + strings.ToUpper(HashToken("a")) + "\n    tenants: [c]\n", "", "token 3: same sha256 as token 1"},
		"no tenants":       {"tokens:\n  - sha256: " + HashToken("a") + "\n", "", "token 1: lists no tenants"},
		"empty tenants":    {"tokens:\n  - sha256: " + HashToken("a") + "\n    tenants: []\n", "", "token 1: lists no tenants"},
		"invalid tenant":   {"tokens:\n  - sha256: " + HashToken("a") + "\n    tenants: [a, \"..\"]\n", "", `token 1: tenant "..": invalid tenant ID`},
		"federated tenant": {"tokens:\n  - sha256: " + HashToken("a") + "\n    tenants: [\"a|b\"]\n", "", `token 1: tenant "a|b": invalid tenant ID`},
		"empty tenant":     {"tokens:\n  - sha256: " + HashToken("a") + "\n    tenants: [\"\"]\n", "", `token 1: tenant "": invalid tenant ID: empty`},
		"no anonymous":     {"tokens:\n  - sha256: " + HashToken("a") + "\n    tenants: [a]\n", tenant.Anonymous, `no token lists tenant "anonymous"`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseTokens([]byte(tc.content), tc.require)
			require.ErrorContains(t, err, tc.msg)
			require.NotContains(t, err.Error(), pasted, "a token pasted as a hash must not reach the logs")
		})
	}
}

// TestTokenSet_LookupIsConstantTime checks that every lookup compares the
// token's hash with every entry through crypto/subtle, whether and wherever
// it matches.
func TestTokenSet_LookupIsConstantTime(t *testing.T) {
	var content strings.Builder
	content.WriteString("tokens:\n")
	tokens := []string{"t0", "t1", "t2", "t3", "t4"}
	for _, tok := range tokens {
		content.WriteString("  - sha256: " + HashToken(tok) + "\n    tenants: [a]\n")
	}
	s, err := parseTokens([]byte(content.String()), "")
	require.NoError(t, err)

	require.Equal(t, reflect.ValueOf(subtle.ConstantTimeCompare).Pointer(), reflect.ValueOf(compareHashes).Pointer(),
		"hashes are compared with crypto/subtle")
	calls := 0
	orig := compareHashes
	compareHashes = func(x, y []byte) int {
		calls++
		require.Len(t, x, sha256.Size)
		require.Len(t, y, sha256.Size)
		return orig(x, y)
	}
	t.Cleanup(func() { compareHashes = orig })

	for want, tok := range append(tokens, "unknown") {
		if tok == "unknown" {
			want = -1
		}
		calls = 0
		require.Equal(t, want, s.lookup(tok), tok)
		require.Equal(t, len(tokens), calls, "token %s: every entry is compared, the match does not stop the scan", tok)
	}
}
