package distributor

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// answer is one replica's answer to the push of a series, as record counts it.
type answer uint8

const (
	answerPending answer = iota
	answerOK
	answerUnknown
	answerRejected
	answerFailed
	numAnswers
)

// votesOf counts answers as record does.
func votesOf(answers []answer) seriesVotes {
	v := seriesVotes{listedBy: -1}
	for _, a := range answers {
		switch a {
		case answerPending:
			v.pending++
		case answerOK:
			v.ok++
		case answerUnknown:
			v.unknown++
		case answerFailed:
			v.failed++
		}
	}
	return v
}

// finalOutcome is the outcome of a series once every replica answered, from
// the rules of quorum.go, written independently of decide.
func finalOutcome(answers []answer, quorum int) outcome {
	count := func(want ...answer) int {
		n := 0
		for _, a := range answers {
			for _, w := range want {
				if a == w {
					n++
				}
			}
		}
		return n
	}
	switch {
	case count(answerOK) >= quorum:
		return outcomeStored
	case count(answerFailed) > 0 && count(answerOK, answerUnknown, answerFailed) >= quorum:
		return outcomeQuorumFailed
	default:
		return outcomeRejected
	}
}

// completions calls f with every way the pending answers of answers can
// resolve.
func completions(answers []answer, f func([]answer)) {
	for i, a := range answers {
		if a != answerPending {
			continue
		}
		for r := answerOK; r < numAnswers; r++ {
			next := append([]answer(nil), answers...)
			next[i] = r
			completions(next, f)
		}
		return
	}
	f(answers)
}

// TestDecideExhaustive checks the quorum decision over every combination of
// replica answers (pending, ok, unknown, rejected, failed) for replication
// factors 1 to 5 and every number of replicas the ring may return (a quorum
// to RF): decide is final exactly when every way the pending replicas may
// answer leads to the same outcome, and then it is that outcome.
func TestDecideExhaustive(t *testing.T) {
	checked := 0
	for rf := 1; rf <= 5; rf++ {
		quorum := rf/2 + 1
		for n := quorum; n <= rf; n++ {
			answers := make([]answer, n)
			var walk func(i int)
			walk = func(i int) {
				if i < n {
					for a := range numAnswers {
						answers[i] = a
						walk(i + 1)
					}
					return
				}
				checked++
				v := votesOf(answers)
				got, decided := v.decide(int32(quorum))
				finals := map[outcome]bool{}
				completions(answers, func(done []answer) { finals[finalOutcome(done, quorum)] = true })
				name := fmt.Sprintf("rf=%d answers=%v", rf, answers)
				if !decided {
					require.Greater(t, len(finals), 1, "%s: undecided although every completion gives %v", name, finals)
					return
				}
				require.Len(t, finals, 1, "%s: decided %v although the pending answers may change it: %v", name, got, finals)
				require.True(t, finals[got], "%s: decided %v, want %v", name, got, finals)
				if v.ok >= int32(quorum) {
					require.Equal(t, outcomeStored, got, "%s: a quorum of oks is stored at once", name)
				}
			}
			walk(0)
		}
	}
	// Σ over rf of Σ_{n=quorum..rf} 5^n.
	require.Equal(t, 5+(25)+(25+125)+(125+625)+(125+625+3125), checked)
}

// TestPush_StragglerAnsweredAtQuorum checks that a push answers once a quorum
// of replicas stored every series, while the third replica's push still
// hangs, and that the straggler reads its request intact after the answer
// (the pooled buffers are not recycled under it, even by the next push) and
// is counted when it fails.
func TestPush_StragglerAnsweredAtQuorum(t *testing.T) {
	d, r, ings := newReplicated(t, 3, 3, nil)
	unblock := make(chan struct{})
	var returned atomic.Int32
	var lateSeries []string // written by the straggler before returned is set
	ings[2].pushFunc = func(ctx context.Context, req *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
		if req.Timeseries[0].Labels[0].Value != "m" {
			return &arguspb.PushResponse{}, nil // The second push is not delayed.
		}
		defer returned.Add(1)
		select {
		case <-unblock:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		for _, ts := range req.Timeseries { // Read after the push was answered.
			lateSeries = append(lateSeries, seriesString(ts))
		}
		return nil, status.Error(codes.Unavailable, "too slow")
	}
	req := numberedRequest(30)
	w := serve(d.PushHandler(), newPushRequest(encode(t, req)))
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	require.Equal(t, int32(0), returned.Load(), "answered while the third replica still pushes")

	// The next push must not reuse the buffers the straggler still reads.
	next := &arguspb.WriteRequest{}
	for i := range 30 {
		next.Timeseries = append(next.Timeseries, series([]string{"__name__", "other", "j", fmt.Sprint(i)}, 7, ms(0)))
	}
	w = serve(d.PushHandler(), newPushRequest(encode(t, next)))
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())

	close(unblock)
	d.WaitPushes()
	var want []string
	for _, ts := range req.Timeseries {
		replicas, err := r.Get(ring.ShardTokenProto(testTenant, ts.Labels), nil)
		require.NoError(t, err)
		for _, inst := range replicas {
			if inst.ID == "ing-2" {
				want = append(want, seriesString(ts))
			}
		}
	}
	require.NotEmpty(t, want)
	require.Equal(t, want, lateSeries)
	require.InDelta(t, 1.0, testutil.ToFloat64(d.metrics.stragglers.WithLabelValues("unavailable")), 0)
	require.InDelta(t, 1.0, testutil.ToFloat64(d.metrics.ingesterPushFailures.WithLabelValues("ing-2:9095")), 0)
	require.InDelta(t, 0.0, testutil.ToFloat64(d.metrics.quorumFailures), 0)
}

// TestPush_WaitsForDecidingReplica checks that a push whose series need the
// slow replica to reach a quorum waits for it: with one replica failed, the
// slow one decides between a 204 and a 5xx.
func TestPush_WaitsForDecidingReplica(t *testing.T) {
	d, _, ings := newReplicated(t, 3, 3, nil)
	ings[0].pushFunc = failWith(status.Error(codes.Unavailable, "down"))
	var waited atomic.Bool
	ings[2].pushFunc = func(ctx context.Context, _ *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
		// Answers only once ing-0's failure is counted, so the handler cannot
		// have decided before this answer.
		for testutil.ToFloat64(d.metrics.ingesterPushFailures.WithLabelValues("ing-0:9095")) == 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			default:
			}
		}
		waited.Store(true)
		return &arguspb.PushResponse{}, nil
	}
	w := serve(d.PushHandler(), newPushRequest(encode(t, numberedRequest(10))))
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	require.True(t, waited.Load())
	d.WaitPushes()
	require.Zero(t, testutil.CollectAndCount(d.metrics.stragglers), "no push answered after the request")
}
