package clustertest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The store check of Writer must be able to fail: these run without
// processes, also in -short mode.
func TestWriterDiffStored(t *testing.T) {
	w := &Writer{opts: WriterOptions{Metric: "m", Series: 2}}
	push := func(seq int, status int) PushResult {
		return PushResult{Seq: seq, T: int64(1000 + seq), Status: status}
	}
	stored := func(seqs ...int) []Series {
		var out []Series
		for s := range 2 {
			ser := Series{Metric: map[string]string{"__name__": "m", "series": []string{"s0000", "s0001"}[s]}}
			for _, seq := range seqs {
				ser.Samples = append(ser.Samples, Sample{T: int64(1000 + seq), V: w.Value(s, seq)})
			}
			out = append(out, ser)
		}
		return out
	}
	e := ExpectFrom([]PushResult{push(0, 204), push(1, 503), push(2, 204)})
	require.Len(t, e.Must, 2)
	require.Len(t, e.May, 1)

	require.Empty(t, w.diffStored(e, stored(0, 2)))
	require.Empty(t, w.diffStored(e, stored(0, 1, 2)), "a failed push may have landed")
	require.Contains(t, w.diffStored(e, stored(0)), "1 acknowledged missing [1002]")
	require.Contains(t, w.diffStored(e, stored(0, 2, 3)), "1 never pushed")
	require.Contains(t, w.diffStored(e, stored(0, 2, 2)), "1 duplicated")
	wrong := stored(0, 2)
	wrong[1].Samples[0].V++
	require.Contains(t, w.diffStored(e, wrong), "series s0001: 2 samples: 0 acknowledged missing [], 0 duplicated, 0 never pushed, 1 wrong value")
	require.Contains(t, w.diffStored(e, stored(0, 2)[:1]), "series s0001: missing entirely")
	other := append(stored(0, 2), Series{Metric: map[string]string{"__name__": "m", "series": "s0000", "x": "y"}})
	require.Contains(t, w.diffStored(e, other), "unexpected series")
}

func TestRingViewIgnoresHeartbeats(t *testing.T) {
	a := RingStatus{ReplicationFactor: 3, Instances: []RingInstance{{ID: "ing-1", State: StateActive, Tokens: 128}, {ID: "ing-0", State: StateActive, Tokens: 128}}}
	b := RingStatus{ReplicationFactor: 3, Instances: []RingInstance{{ID: "ing-0", State: StateActive, Tokens: 128, OwnedRatio: 0.5}, {ID: "ing-1", State: StateActive, Tokens: 128}}}
	require.Equal(t, viewOf(a), viewOf(b))
	b.Instances[1].State = StateUnhealthy
	require.NotEqual(t, viewOf(a), viewOf(b))
	require.Equal(t, 1, b.CountState(StateActive))
}
