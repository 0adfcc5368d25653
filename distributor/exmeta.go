package distributor

import (
	"fmt"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/prompb"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// Exemplars and metric metadata on the write path.
//
// Exemplars travel with their series: a series that carries any is decoded
// (the fast path takes none), its exemplars are validated one by one, the
// invalid ones dropped and reported (err-argus-invalid-exemplar,
// err-argus-exemplar-missing-timestamp, err-argus-exemplar-labels-too-long)
// and the rest sent, inside the series, to the series' replicas. A series
// with exemplars and no sample (Prometheus sends them apart) is sent too.
//
// Metadata entries (WriteRequest field 3) are validated and each sent to the
// replicas of the token of its metric family name, the token of the series
// {__name__="<family>"}: a family lands on replication-factor ingesters, so
// that metadata spreads over the ring like series instead of loading every
// ingester with all of it, and the querier, which reads every ingester,
// finds it. Each entry counts in the write quorum like a series: the push is
// answered 2xx only once a quorum of each entry's replicas stored it.

// maxMetadataLength bounds a metadata entry's family name, help and unit,
// in bytes (Mimir's -validation.max-metadata-length default).
const maxMetadataLength = 1024

// metadataRef is one valid metadata entry of a push: its encoding, which
// aliases writeCtx.decoded, and the shard token of its family.
type metadataRef struct {
	raw    []byte
	family string
	token  uint32
}

// exemplarReason is why the distributor dropped an exemplar or a metadata
// entry: the reason label of argus_discarded_exemplars_total and
// argus_discarded_metadata_total.
type exemplarReason uint8

const (
	exReasonInvalid exemplarReason = iota
	exReasonMissingTimestamp
	exReasonLabelsTooLong
	exReasonSeriesRejected
	mdReasonInvalid
	mdReasonMissingName
	mdReasonTooLong
	numExemplarReasons
)

var exemplarReasonInfo = [numExemplarReasons]struct {
	label string
	id    apierror.ID
}{
	exReasonInvalid:          {"invalid_exemplar", apierror.InvalidExemplar},
	exReasonMissingTimestamp: {"exemplar_missing_timestamp", apierror.ExemplarMissingTimestamp},
	exReasonLabelsTooLong:    {"exemplar_labels_too_long", apierror.ExemplarLabelsTooLong},
	exReasonSeriesRejected:   {"series_rejected", ""},
	mdReasonInvalid:          {"invalid_metadata", apierror.InvalidMetadata},
	mdReasonMissingName:      {"metadata_missing_metric_name", apierror.MetadataMissingMetricName},
	mdReasonTooLong:          {"metadata_too_long", apierror.MetadataTooLong},
}

// newDiscardedExemplars creates the counters of dropped exemplars and
// metadata entries, every reason at zero.
func newDiscardedExemplars(f promauto.Factory) (out [numExemplarReasons]prometheus.Counter) {
	ex := f.NewCounterVec(prometheus.CounterOpts{
		Name: "argus_discarded_exemplars_total",
		Help: "Exemplars the distributor dropped, by reason.",
	}, []string{"reason"})
	md := f.NewCounterVec(prometheus.CounterOpts{
		Name: "argus_discarded_metadata_total",
		Help: "Metric metadata entries the distributor dropped, by reason.",
	}, []string{"reason"})
	for r := range numExemplarReasons {
		if r >= mdReasonInvalid {
			out[r] = md.WithLabelValues(exemplarReasonInfo[r].label)
		} else {
			out[r] = ex.WithLabelValues(exemplarReasonInfo[r].label)
		}
	}
	return out
}

// validateExemplars drops the invalid exemplars of ts (whose labels are
// valid and normalized), reporting each, and reports whether it dropped any.
func (wc *writeCtx) validateExemplars(ts *arguspb.TimeSeries) (changed bool) {
	kept := ts.Exemplars[:0]
	for _, raw := range ts.Exemplars {
		why, detail := checkExemplar(raw)
		if detail == "" {
			kept = append(kept, raw)
			continue
		}
		wc.exInvalid[why]++
		wc.rej.addOther(exemplarReasonInfo[why].id, "exemplar of "+formatLabels(ts.Labels)+": "+detail)
	}
	changed = len(kept) != len(ts.Exemplars)
	clear(ts.Exemplars[len(kept):])
	ts.Exemplars = kept
	return changed
}

// checkExemplar checks one encoded prompb.Exemplar as Prometheus's exemplar
// storage and Mimir's distributor do: it decodes; its label names are
// non-empty, unique, valid UTF-8, and its values valid UTF-8; its labels
// hold at most 128 runes, names and values together (OpenMetrics); it has
// a timestamp. An empty detail means valid.
func checkExemplar(raw []byte) (exemplarReason, string) {
	var e prompb.Exemplar
	if err := e.Unmarshal(raw); err != nil {
		return exReasonInvalid, fmt.Sprintf("does not decode: %v", err)
	}
	runes := 0
	seen := make(map[string]struct{}, len(e.Labels))
	for _, l := range e.Labels {
		switch _, dup := seen[l.Name]; {
		case l.Name == "" || !utf8.ValidString(l.Name):
			return exReasonInvalid, fmt.Sprintf("invalid label name %q", truncate(l.Name))
		case !utf8.ValidString(l.Value):
			return exReasonInvalid, fmt.Sprintf("label %q has a value that is not valid UTF-8", truncate(l.Name))
		case dup:
			return exReasonInvalid, fmt.Sprintf("duplicate label name %q", truncate(l.Name))
		}
		seen[l.Name] = struct{}{}
		runes += utf8.RuneCountInString(l.Name) + utf8.RuneCountInString(l.Value)
	}
	if runes > exemplar.ExemplarMaxLabelSetLength {
		return exReasonLabelsTooLong, fmt.Sprintf("labels of %d runes, over %d", runes, exemplar.ExemplarMaxLabelSetLength)
	}
	if e.Timestamp == 0 {
		return exReasonMissingTimestamp, "no timestamp"
	}
	return 0, ""
}

// validateMetadata keeps in wc.meta the valid metadata entries of the
// request, each with its shard token (for tenantID), reporting the others.
func (wc *writeCtx) validateMetadata(tenantID string) {
	kept := wc.meta[:0]
	for _, m := range wc.meta {
		var pm prompb.MetricMetadata
		why, detail := mdReasonInvalid, ""
		switch err := pm.Unmarshal(m.raw); {
		case err != nil:
			detail = fmt.Sprintf("does not decode: %v", err)
		case pm.MetricFamilyName == "":
			why, detail = mdReasonMissingName, "no metric family name"
		case !utf8.ValidString(pm.MetricFamilyName) || !utf8.ValidString(pm.Help) || !utf8.ValidString(pm.Unit):
			detail = "not valid UTF-8"
		case len(pm.MetricFamilyName) > maxMetadataLength || len(pm.Help) > maxMetadataLength || len(pm.Unit) > maxMetadataLength:
			why, detail = mdReasonTooLong, fmt.Sprintf("family name, help or unit longer than %d bytes", maxMetadataLength)
		}
		if detail != "" {
			wc.exInvalid[why]++
			wc.rej.addOther(exemplarReasonInfo[why].id, fmt.Sprintf("metadata of %q: %s", truncate(pm.MetricFamilyName), detail))
			continue
		}
		m.family = pm.MetricFamilyName
		wc.key = append(append(wc.key[:0], tenantID...), 0xff)
		wc.key = append(append(append(append(wc.key, metricName...), 0xff), m.family...), 0xff)
		m.token = shardToken(wc.key)
		kept = append(kept, m)
	}
	clear(wc.meta[len(kept):])
	wc.meta = kept
}

// tokenPicker places a token on its replicas (ring.KV, ring.Static, and the
// ring.Picker of one push).
type tokenPicker interface {
	Get(token uint32, buf []ring.Instance) ([]ring.Instance, error)
}

// placeMetadata adds every metadata entry to the batches of its replicas
// and readies its vote (index len(wc.series)+m). It returns how many entries
// have fewer healthy replicas than a quorum, and the first one's error.
func (wc *writeCtx) placeMetadata(picker tokenPicker) (unplaced int, firstErr error) {
	for m := range wc.meta {
		replicas, err := picker.Get(wc.meta[m].token, wc.replicas[:0])
		wc.replicas = replicas[:0]
		if err == nil && len(replicas) < wc.quorum {
			err = fmt.Errorf("get token %d: %d healthy replicas %s, need %d", wc.meta[m].token, len(replicas), instanceAddrs(replicas), wc.quorum)
		}
		if err != nil {
			unplaced++
			if firstErr == nil {
				firstErr = fmt.Errorf("metadata of %q: %w", wc.meta[m].family, err)
			}
			continue
		}
		wc.startVote(len(wc.series)+m, len(replicas))
		for _, inst := range replicas {
			b := wc.batchFor(inst.Addr)
			b.meta = append(b.meta, int32(m))
		}
	}
	return unplaced, firstErr
}

// recordMetadata counts the answer of b in the votes of its metadata
// entries: an ingester never rejects one, so a push that did not fail
// stored them.
func (wc *writeCtx) recordMetadata(b *batch) {
	for _, m := range b.meta {
		i := int32(len(wc.series)) + m
		if b.err != nil {
			wc.votes[i].failed++
		} else {
			wc.votes[i].ok++
		}
		wc.decide(i)
	}
}

// describe names what vote i is about, for error messages: a series' labels
// or a metadata entry's family.
func (wc *writeCtx) describe(i int) string {
	if i < len(wc.series) {
		return formatLabels(wc.labelsOf(i))
	}
	return fmt.Sprintf("metadata of %q", wc.meta[i-len(wc.series)].family)
}

// metadataSize is the size of b's metadata fields in its WriteRequest.
func (r rawBatch) metadataSize() int {
	n := 0
	for _, m := range r.b.meta {
		l := len(r.wc.meta[m].raw)
		n += 1 + sizeOfVarint(uint64(l)) + l
	}
	return n
}

// marshalMetadata writes b's metadata fields back to front ending at p of
// buf, as MarshalToSizedBufferVT does, and returns where they start.
func (r rawBatch) marshalMetadata(buf []byte, p int) int {
	for k := len(r.b.meta) - 1; k >= 0; k-- {
		raw := r.wc.meta[r.b.meta[k]].raw
		p -= len(raw)
		copy(buf[p:], raw)
		p -= sizeOfVarint(uint64(len(raw)))
		putVarint(buf[p:], uint64(len(raw)))
		p--
		buf[p] = 0x1a // field 3 (metadata), wire type 2
	}
	return p
}

// exemplarsWritten is the number of exemplars of the push that validation
// kept and that go to the ingesters (an ingester may still drop some: see
// docs/api.md), for the X-Prometheus-Remote-Write-Exemplars-Written header.
func (wc *writeCtx) exemplarsWritten() int {
	n := int64(wc.exemplars)
	for r := exReasonInvalid; r <= exReasonSeriesRejected; r++ {
		n -= wc.exInvalid[r]
	}
	return int(n)
}

// countExemplars counts the exemplars and metadata entries received and
// those validation dropped. Unlike discarded samples, counted once the
// answer is final, they are counted at validation: a push retried after a
// 5xx counts its invalid exemplars again.
func (d *Distributor) countExemplars(wc *writeCtx) {
	if wc.exemplars == 0 && wc.metadataReceived == 0 {
		return
	}
	d.metrics.receivedExemplars.Add(float64(wc.exemplars))
	d.metrics.receivedMetadata.Add(float64(wc.metadataReceived))
	for r, n := range wc.exInvalid {
		if n > 0 {
			d.metrics.discardedExemplars[r].Add(float64(n))
		}
	}
}
