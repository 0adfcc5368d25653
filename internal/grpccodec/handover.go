package grpccodec

import "github.com/argus-tsdb/argus/proto/arguspb"

// Handover builds a WriteRequest, in pooled arrays leased to it as
// Codec.Unmarshal leases them, from series its caller has already read. It
// is the all-in-one distributor's hand-over to its own ingester: the
// distributor has scanned and validated every series of the push, so it
// passes each label as a string (aliasing the push's body) and each
// series' encoding for its samples, and no WriteRequest is encoded or
// decoded in between. The labels were read twice before, once by the
// distributor's scan and once here (a counting pass and a decoding pass):
// 14 % of an all-in-one's CPU at one sample per series
// (docs/benchmarks.md, "Ingest CPU per sample").
//
// The caller declares the numbers of series, labels and samples, adds
// every series (Label for each label, then Samples, then EndSeries) and
// calls Finish, which leases the arrays to the request, or, if what was
// added differs from what was declared or a sample is not in the plain
// encoding (a value and a timestamp), leases nothing and returns false:
// the caller then encodes the request and has it decoded as before. Every
// string of the request aliases the caller's memory, which must stay
// unchanged until ReleaseWriteRequest.
type Handover struct {
	m      *arguspb.WriteRequest
	d      decoder
	n      counts // declared
	l0, n0 int    // the first label and sample of the series being added
	failed bool
}

// StartHandover starts building m, which must be empty, from the given
// numbers of series, labels and samples into h (a value of the caller's,
// so that a hand-over allocates nothing). It returns false, having leased
// nothing, if m is not empty or there is no series.
func StartHandover(h *Handover, m *arguspb.WriteRequest, series, labels, samples int) bool {
	if series <= 0 || labels < 0 || samples < 0 || len(m.Timeseries) != 0 || len(m.Metadata) != 0 {
		return false
	}
	n := counts{series: series, labels: labels, samples: samples}
	a := arraysPool.Get().(*requestArrays)
	a.grow(n)
	m.Timeseries = a.seriesPtrs[:series:series]
	*h = Handover{m: m, d: decoder{requestArrays: a}, n: n}
	return true
}

// Label adds a label of the current series.
func (h *Handover) Label(name, value string) {
	if h.d.li >= h.n.labels {
		h.failed = true
		return
	}
	h.d.addLabel(name, value)
}

// Samples adds the samples of the current series from enc, the series'
// encoding (its label fields are skipped).
func (h *Handover) Samples(enc []byte) {
	for i := 0; i < len(enc) && !h.failed; {
		tag := enc[i]
		start, end, ok := lengthAt(enc, i+1)
		switch {
		case !ok || tag != tagLabels && tag != tagSamples:
			h.failed = true
		case tag == tagSamples:
			v, t, ok := sampleAt(enc[start:end])
			if !ok || h.d.ni >= h.n.samples {
				h.failed = true
				break
			}
			h.d.putSample(v, t)
		}
		i = end
	}
}

// EndSeries ends the current series: the labels and samples added since
// the previous one are its.
func (h *Handover) EndSeries() {
	if h.d.si >= h.n.series {
		h.failed = true
		return
	}
	ts := &h.d.series[h.d.si]
	*ts = arguspb.TimeSeries{}
	h.d.capSeries(ts, h.l0, h.n0)
	h.m.Timeseries[h.d.si] = ts
	h.d.si++
	h.l0, h.n0 = h.d.li, h.d.ni
}

// Finish leases the arrays to the request and returns true, or, if the
// series added are not those declared, returns them to their pool, leaves
// the request empty and returns false.
func (h *Handover) Finish() bool {
	if h.failed || h.d.si != h.n.series || h.d.li != h.n.labels || h.d.ni != h.n.samples {
		h.m.Timeseries = nil
		arraysPool.Put(h.d.requestArrays)
		return false
	}
	leasesMu.Lock()
	leases[h.m] = lease{arrays: h.d.requestArrays}
	leasesMu.Unlock()
	return true
}
