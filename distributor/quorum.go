package distributor

import (
	"fmt"
	"strings"
)

// The write quorum: how the answers of a series' replicas become one outcome
// for the series, and the outcomes of all series one answer for the sender.
//
// Each replica of a series votes, from the answer of its ingester's batch:
//
//   - ok: the push succeeded and the ingester rejected none of the series'
//     samples: it did not list the series in PushResponse.rejected, and its
//     list accounts for all of its rejected samples;
//   - unknown: the push succeeded, the ingester did not list the series, but
//     it rejected more samples than it listed (it caps its list), so some of
//     the series' samples may be among them;
//   - rejected: the ingester listed the series;
//   - failed: the push returned an error; nothing it was sent is stored.
//
// With quorum = ReplicationFactor/2+1, a series is
//
//   - stored when ok ≥ quorum: every one of its samples is on a quorum;
//   - a quorum failure (5xx, the sender retries) when ok < quorum but the
//     failed replicas could still make a quorum (ok+unknown+failed ≥ quorum):
//     a retry may store it;
//   - rejected (400) otherwise: the ingesters that answered refused it, and
//     a retry cannot change that.
//
// A series rejected by one replica and accepted by a quorum of the others is
// therefore stored and not reported. Acceptance is judged per series, not per
// sample (an ingester does not say which samples it rejected): a series whose
// replicas each rejected a different sample is reported rejected although
// each sample may be on a quorum. The rule may report a stored sample as
// rejected, never the reverse.
//
// A rejected series is counted and listed once per request, with the answer
// of the replica that rejected most of its samples. Rejected samples that no
// ingester attributes to a series are counted (reason unknown) only for the
// series that no quorum stored, as the least of those series' samples and of
// the most unattributed samples one replica reported.

// seriesVotes are the votes of the replicas of one series, counted as their
// answers arrive (see record).
type seriesVotes struct {
	ok, unknown, failed int32
	// pending are the replicas that have not answered yet.
	pending int32
	// listedBy is the index of the batch whose ingester listed the most
	// rejected samples of the series (listed of them); -1 if none listed it.
	listedBy int32
	listed   int64
	// listedHist are the native histograms among listed.
	listedHist int64
	// exDropped is the most exemplars of the series that a replica which
	// stored it reported not storing (PushResponse.dropped_exemplars).
	exDropped int64
	// decided is set once outcome is final: no pending answer can change it.
	decided bool
	outcome outcome
}

// outcome is what became of one series.
type outcome uint8

const (
	outcomeStored outcome = iota
	outcomeQuorumFailed
	outcomeRejected
)

// decide returns the outcome of a series and true as soon as no answer of its
// pending replicas can change it, else false. It is what lets a push answer
// at quorum (see pushBatches):
//
//   - stored once ok ≥ quorum, whatever the others answer;
//   - undecided while the pending replicas could still make a quorum;
//   - a quorum failure once some replica failed and ok+unknown+failed ≥
//     quorum: more answers only add to those counts, and no quorum is left;
//   - rejected once the replicas that did not refuse it, pending included,
//     are fewer than a quorum: nothing can make it stored or a failure;
//   - else undecided: a pending failure would make it a quorum failure (a
//     5xx the sender retries), a pending refusal a rejection (a 400).
//
// With no pending replica it is always decided, by the rules at the top of
// this file. TestDecideExhaustive checks every combination of answers for
// replication factors 1 to 5.
func (v *seriesVotes) decide(quorum int32) (outcome, bool) {
	switch {
	case v.ok >= quorum:
		return outcomeStored, true
	case v.ok+v.pending >= quorum:
		return 0, false
	case v.failed > 0 && v.ok+v.unknown+v.failed >= quorum:
		return outcomeQuorumFailed, true
	case v.pending == 0 || v.ok+v.unknown+v.failed+v.pending < quorum:
		return outcomeRejected, true
	default:
		return 0, false
	}
}

// settle turns the answers recorded so far (every series is decided, or one
// is a quorum failure) into the outcome of the push. If some series missed a
// quorum because of failed pushes, it returns a *quorumError (5xx) and counts
// nothing else: the sender retries the whole request. Otherwise it counts and
// records the series the ingesters rejected (see the rules above) and
// returns the number of samples they rejected.
func (d *Distributor) settle(wc *writeCtx, tm *tenantMetrics) (rejectedSamples int64, err error) {
	if wc.lost > 0 {
		first := -1
		for i := range wc.votes {
			if v := &wc.votes[i]; v.decided && v.outcome == outcomeQuorumFailed {
				first = i
				break
			}
		}
		d.metrics.quorumFailures.Add(float64(wc.lost))
		qe := &quorumError{series: wc.lost, quorum: wc.quorum, rf: wc.rf, first: wc.describe(first)}
		for i := range wc.batches {
			if b := &wc.batches[i]; b.seen && b.err != nil {
				qe.errs = append(qe.errs, b.err)
			}
		}
		return 0, qe
	}
	if wc.rejectedSeries == 0 {
		return 0, nil // Most pushes: a quorum stored every series.
	}
	return d.reportRejected(wc, tm), nil
}

// startVote readies the votes of series i before the pushes: the answers
// of its replicas are pending.
func (wc *writeCtx) startVote(i int, replicas int) {
	wc.votes[i] = seriesVotes{listedBy: -1, pending: int32(replicas)}
}

// record counts the answer of batch bi in the votes of its series and
// decides those it settles. Only the goroutine that answers the push calls
// it, once per batch, after the batch's push returned.
func (wc *writeCtx) record(bi int32) {
	b := &wc.batches[bi]
	b.seen = true
	wc.recordMetadata(b)
	wc.recordExemplarDrops(b)
	switch {
	case b.err != nil:
		for _, i := range b.series {
			wc.votes[i].failed++
			wc.decide(i)
		}
	case b.resp.GetRejectedSamples() == 0 && len(b.resp.GetRejected()) == 0:
		for _, i := range b.series {
			wc.votes[i].ok++
			wc.decide(i)
		}
	default:
		listed := wc.listedIn(b)
		for _, i := range b.series {
			v := &wc.votes[i]
			if n, ok := listed[i]; ok {
				if v.listedBy < 0 || n.samples > v.listed {
					v.listedBy, v.listed, v.listedHist = bi, n.samples, n.hists
				}
			} else if b.unlisted > 0 {
				v.unknown++
			} else {
				v.ok++
			}
			wc.decide(i)
		}
	}
}

// decide counts one answer of series i as no longer pending and, if that
// settles the series, counts its outcome.
func (wc *writeCtx) decide(i int32) {
	v := &wc.votes[i]
	v.pending--
	if v.decided {
		return
	}
	o, ok := v.decide(int32(wc.quorum))
	if !ok {
		return
	}
	v.decided, v.outcome = true, o
	wc.undecided--
	switch o {
	case outcomeQuorumFailed:
		wc.lost++
	case outcomeRejected:
		wc.rejectedSeries++
	}
}

// listedCount is what an ingester listed as rejected of one series.
type listedCount struct {
	samples, hists int64 // hists of the samples are native histograms
}

// recordExemplarDrops notes, for each series of b's successful push, the
// exemplars its ingester reported not storing (the most of any replica).
func (wc *writeCtx) recordExemplarDrops(b *batch) {
	if b.err != nil {
		return
	}
	for _, d := range b.resp.GetDroppedExemplars() {
		if k := int(d.GetSeriesIndex()); k >= 0 && k < len(b.series) {
			v := &wc.votes[b.series[k]]
			v.exDropped = max(v.exDropped, d.GetDropped())
		}
	}
}

// listedIn matches the series b's ingester listed as rejected with the
// series of the request, by labels, and returns the rejected samples (and
// histograms) of each, by series index (a scratch map, valid until the next
// call). It sets b.rejIdx and b.unlisted. A listed series that matches none
// of the request is counted as unlisted.
func (wc *writeCtx) listedIn(b *batch) map[int32]listedCount {
	if wc.listed == nil {
		wc.listed = make(map[int32]listedCount)
	}
	clear(wc.listed)
	rejected := b.resp.GetRejected()
	b.rejIdx = b.rejIdx[:0]
	var matched int64
	if len(rejected) > 0 {
		wc.indexLabels()
	}
	for _, rs := range rejected {
		wc.keyBuf = appendProtoLabels(wc.keyBuf[:0], rs.Labels)
		i, ok := wc.keys[string(wc.keyBuf)]
		if !ok {
			i = -1
		} else {
			n := wc.listed[i]
			n.samples += rs.RejectedSamples
			n.hists += rs.RejectedHistograms
			wc.listed[i] = n
			matched += rs.RejectedSamples
		}
		b.rejIdx = append(b.rejIdx, i)
	}
	b.unlisted = max(b.resp.GetRejectedSamples()-matched, 0)
	return wc.listed
}

// indexLabels fills wc.keys, once per request: the labels key of each series
// to its index (the first, should the request hold a series twice).
func (wc *writeCtx) indexLabels() {
	if len(wc.keys) > 0 || len(wc.series) == 0 {
		return
	}
	if wc.keys == nil {
		wc.keys = make(map[string]int32, len(wc.series))
	}
	for i := range wc.series {
		wc.keyBuf = wc.appendLabels(wc.keyBuf[:0], i)
		if _, ok := wc.keys[string(wc.keyBuf)]; !ok {
			wc.keys[string(wc.keyBuf)] = int32(i) // Copies the key: it does not alias the body.
		}
	}
}

// reportRejected counts and records, once each, the series that no quorum
// stored, and returns their rejected samples.
func (d *Distributor) reportRejected(wc *writeCtx, tm *tenantMetrics) (rejectedSamples int64) {
	var unattributed int64 // samples of rejected series no replica listed
	for i := range wc.series {
		v := &wc.votes[i]
		if !v.decided || v.outcome != outcomeRejected {
			continue
		}
		if v.listedBy < 0 {
			unattributed += int64(wc.series[i].samples)
			continue
		}
		rejectedSamples += d.reportListed(wc, tm, int32(i), &wc.batches[v.listedBy])
	}
	if unattributed == 0 {
		return rejectedSamples
	}
	// The unattributed samples of the replicas of those series: at most the
	// most one replica reported.
	var most int64
	for bi := range wc.batches {
		b := &wc.batches[bi]
		if b.seen && b.unlisted > most && wc.holdsUnattributed(b) {
			most = b.unlisted
		}
	}
	n := min(unattributed, most)
	tm.discarded[reasonUnknown].Add(float64(n))
	wc.rej.samples += n
	return rejectedSamples + n
}

// holdsUnattributed reports whether b holds a rejected series no replica listed.
func (wc *writeCtx) holdsUnattributed(b *batch) bool {
	for _, i := range b.series {
		if v := &wc.votes[i]; v.decided && v.outcome == outcomeRejected && v.listedBy < 0 {
			return true
		}
	}
	return false
}

// reportListed counts and records series i as b's ingester rejected it: one
// line for the series, whatever the number of reasons the ingester gave.
func (d *Distributor) reportListed(wc *writeCtx, tm *tenantMetrics, i int32, b *batch) (samples int64) {
	why := reasonUnknown
	var detail strings.Builder
	for j, rs := range b.resp.GetRejected() {
		if b.rejIdx[j] != i {
			continue
		}
		r := reasonFromProto(rs.Reason)
		tm.discarded[r].Add(float64(rs.RejectedSamples))
		samples += rs.RejectedSamples
		msg := rs.Message
		if msg == "" {
			msg = fmt.Sprintf("%d samples rejected", rs.RejectedSamples)
		}
		if detail.Len() == 0 {
			why = r
		} else {
			detail.WriteString("; " + r.text() + ": ")
		}
		detail.WriteString(msg)
	}
	wc.rej.add(wc.labelsOf(int(i)), why, detail.String(), samples)
	return samples
}
