package benchingest

import (
	"testing"

	"github.com/golang/snappy"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// TestWorkloadRequests checks that the requests of a workload give every
// series exactly its samples, each at the next 15 s step, in order, and
// that each round's requests hold disjoint series.
func TestWorkloadRequests(t *testing.T) {
	for _, spr := range []int{1, 3, 7} {
		w := &workload{series: 23, perRequest: spr, seriesPerRequest: 5, samples: 21 / spr * spr, startMs: 1000}
		for i := range w.series {
			w.labels = append(w.labels, seriesLabels(i))
		}
		perRound := (w.series + w.seriesPerRequest - 1) / w.seriesPerRequest
		last := map[string]int64{}
		count := map[string]int{} // in this round
		total := map[string]int{}
		var buf arguspb.WriteRequest
		for k := range w.requests() {
			if k%perRound == 0 {
				clear(count) // a new round
			}
			body, err := w.request(k, &buf)
			require.NoError(t, err)
			raw, err := snappy.Decode(nil, body)
			require.NoError(t, err)
			var req arguspb.WriteRequest
			require.NoError(t, req.UnmarshalVT(raw))
			for _, ts := range req.Timeseries {
				key := ts.Labels[3].Value + "/" + ts.Labels[0].Value // instance and name: unique
				require.Zero(t, count[key], "series %s twice in a round", key)
				count[key] = len(ts.Samples)
				total[key] += len(ts.Samples)
				require.Len(t, ts.Samples, spr)
				for _, s := range ts.Samples {
					if prev, ok := last[key]; ok {
						require.Equal(t, prev+stepMs, s.TimestampMs, "series %s", key)
					} else {
						require.Equal(t, w.startMs, s.TimestampMs, "series %s", key)
					}
					last[key] = s.TimestampMs
				}
			}
		}
		require.Len(t, last, w.series, "spr %d", spr)
		for key, ts := range last {
			require.Equal(t, w.startMs+int64(w.samples-1)*stepMs, ts, "series %s, spr %d", key, spr)
			require.Equal(t, w.samples, total[key], "series %s, spr %d", key, spr)
		}
	}
}
