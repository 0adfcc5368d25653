package distributor

import (
	"fmt"
	"strings"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// rejections tracks what a push did not store, after Thanos's
// writeErrorTracker: every rejected series and sample is counted, and the
// first max series are kept as formatted lines for the response body.
type rejections struct {
	max     int
	series  int
	samples int64
	lines   []string
}

func (r *rejections) reset(maxLines int) {
	clear(r.lines)
	*r = rejections{max: maxLines, lines: r.lines[:0]}
}

// add records a rejected series. ls may alias pooled memory, so the line is
// formatted now; past max lines the series is only counted.
func (r *rejections) add(ls []*arguspb.Label, why, detail string, samples int64) {
	r.series++
	r.samples += samples
	if len(r.lines) >= r.max {
		return
	}
	r.lines = append(r.lines, formatLabels(ls)+": "+why+": "+detail)
}

// err returns nil if nothing was rejected, else the rejectedError whose
// message is the response body: a summary line, then one line per listed
// series.
func (r *rejections) err(acceptedSamples int64) error {
	if r.series == 0 && r.samples == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d series (%d samples) rejected, %d samples accepted", r.series, r.samples, acceptedSamples)
	for _, l := range r.lines {
		b.WriteByte('\n')
		b.WriteString(l)
	}
	if more := r.series - len(r.lines); more > 0 {
		fmt.Fprintf(&b, "\n(%d more rejected series not listed)", more)
	}
	return &rejectedError{body: b.String()}
}

// formatLabels renders ls in the Prometheus text form, as
// labels.Labels.String does: {__name__="up", job="x"}. Labels are kept in
// their order, duplicates included, so that an invalid set shows as sent.
func formatLabels(ls []*arguspb.Label) string {
	b := labels.NewScratchBuilder(len(ls))
	for _, l := range ls {
		b.Add(l.Name, l.Value)
	}
	return b.Labels().String()
}
