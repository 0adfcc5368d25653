package clustere2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// waitPushes waits until w has answered n more pushes than it had, and
// returns the results so far. Pushes are paced by wall-clock time (one per
// interval): there is nothing faster to poll.
func waitPushes(t testing.TB, w *clustertest.Writer, n int) []clustertest.PushResult {
	t.Helper()
	from := len(w.Results())
	clustertest.Eventually(t, func() string {
		if got := len(w.Results()) - from; got < n {
			return fmt.Sprintf("%d of %d more pushes answered", got, n)
		}
		return ""
	}, 60*time.Second)
	return w.Results()
}

// requireStored requires that querier q holds exactly what e says of w's
// series (clustertest.Writer.CheckStored), on the first try: an
// acknowledged sample must be readable as soon as the push is answered.
func requireStored(t testing.TB, w *clustertest.Writer, q *clustertest.Member, e clustertest.Expect, when string) {
	t.Helper()
	diff, n := w.CheckStored(t, q.Process, e)
	require.Empty(t, diff, "%s: querier %s", when, q.ID())
	require.Positive(t, n, "%s: nothing stored", when)
	t.Logf("%s: %s answers exactly: %d samples of %d acknowledged pushes (%d unacknowledged)", when, q.ID(), n, len(e.Must), len(e.May))
}

// allAcked treats every result as acknowledged: for the check after the
// failed pushes were pushed again successfully.
func allAcked(results []clustertest.PushResult) clustertest.Expect {
	return clustertest.Expect{Must: results}
}
