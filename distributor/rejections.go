package distributor

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/argus-tsdb/argus/internal/apierror"
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
	firstID apierror.ID // of the first rejected series
	// others are the rejected exemplars and metadata entries (exmeta.go),
	// firstOther the ID of the first.
	others     int
	firstOther apierror.ID
}

func (r *rejections) reset(maxLines int) {
	clear(r.lines)
	*r = rejections{max: maxLines, lines: r.lines[:0]}
}

// add records a series rejected for why (the first reason when there are
// several). ls may alias pooled memory, so the line is formatted now; past
// max lines the series is only counted.
func (r *rejections) add(ls []*arguspb.Label, why reason, detail string, samples int64) {
	if r.series == 0 {
		r.firstID = why.errorID()
	}
	r.series++
	r.samples += samples
	if len(r.lines) >= r.max {
		return
	}
	r.lines = append(r.lines, string(why.errorID())+": "+formatLabels(ls)+": "+why.text()+": "+detail)
}

// addOther records a rejected exemplar or metadata entry: line says which
// and why, after its error ID.
func (r *rejections) addOther(id apierror.ID, line string) {
	if r.others == 0 {
		r.firstOther = id
	}
	r.others++
	if len(r.lines) < r.max {
		r.lines = append(r.lines, string(id)+": "+line)
	}
}

// err returns nil if nothing was rejected, else the rejectedError whose
// message is the response body but for the ID and tenant errorBody puts
// first: a summary, then one line per listed series, each with its own error
// ID, labels, reason and the limit in force. Its ID is the first rejected
// series'.
func (r *rejections) err(acceptedSamples int64) error {
	if r.series == 0 && r.samples == 0 && r.others == 0 {
		return nil
	}
	id := r.firstID
	switch {
	case r.series == 0 && r.samples == 0:
		id = r.firstOther
	case r.series == 0:
		id = apierror.IngesterRejected // Only samples no ingester attributed to a series.
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d series (%d samples) rejected, %d samples accepted", r.series, r.samples, acceptedSamples)
	if r.others > 0 {
		fmt.Fprintf(&b, ", %d exemplars or metadata entries rejected", r.others)
	}
	for _, l := range r.lines {
		b.WriteByte('\n')
		b.WriteString(l)
	}
	if more := r.series + r.others - len(r.lines); more > 0 {
		fmt.Fprintf(&b, "\n(%d more rejected series not listed)", more)
	}
	return &rejectedError{id: id, body: b.String()}
}

// formatLabels renders ls in the Prometheus text form, as
// labels.Labels.String does: {__name__="up", job="x"}. Labels are kept in
// their order, duplicates included, so that an invalid set shows as sent.
// Names and values longer than maxShownLength bytes are cut, so that a
// series rejected for an oversized label does not make the answer huge.
func formatLabels(ls []*arguspb.Label) string {
	b := labels.NewScratchBuilder(len(ls))
	for _, l := range ls {
		b.Add(truncate(l.Name), truncate(l.Value))
	}
	return b.Labels().String()
}

// maxShownLength is the most bytes of a label name or value an error message
// shows.
const maxShownLength = 200

// truncate cuts s to maxShownLength bytes (at a rune boundary) and says so.
func truncate(s string) string {
	if len(s) <= maxShownLength {
		return s
	}
	cut := maxShownLength
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("...(%d bytes)", len(s))
}
