package querier

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWithErrorID checks which envelopes get an ID and that every other
// field of the envelope is kept.
func TestWithErrorID(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"status":"error","errorType":"bad_data","error":"1:5: parse error"}`,
			`{"status":"error","errorType":"bad_data","error":"err-argus-bad-query: 1:5: parse error"}`},
		{`{"status":"error","errorType":"execution","error":"found duplicate series","warnings":["w"]}`,
			`{"status":"error","errorType":"execution","error":"err-argus-query-failed: found duplicate series","warnings":["w"]}`},
		// An ID already there (an error of ours wrapped by the engine).
		{`{"status":"error","errorType":"execution","error":"err-argus-max-fetched-series-per-query: x"}`,
			`{"status":"error","errorType":"execution","error":"err-argus-max-fetched-series-per-query: x"}`},
		// Other types keep their text.
		{`{"status":"error","errorType":"canceled","error":"context canceled"}`,
			`{"status":"error","errorType":"canceled","error":"context canceled"}`},
	} {
		require.JSONEq(t, tc.want, string(withErrorID([]byte(tc.in))))
	}
	require.Equal(t, "not json", string(withErrorID([]byte("not json"))))
}
