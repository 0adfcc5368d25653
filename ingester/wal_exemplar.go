package ingester

import (
	"context"
	"fmt"
	"strings"

	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"
)

// Replay of the exemplar and metadata records (see exemplars.go and
// metadata.go for what they hold and why).

// metaReplay routes the metadata records of one replay: the refs of the
// metadata entries' series records, to their tenant and family.
type metaReplay struct {
	refs map[chunks.HeadSeriesRef]metaRef
	// exemplars and metadata are decoding scratch.
	exemplars []record.RefExemplar
	metadata  []record.RefMetadata
}

type metaRef struct {
	h   *tenantHead
	fam string
}

// replayMetadataSeries takes the series record of a metadata entry, whose
// labels name its family (see metadataFamilyOf), and reports whether it was
// one.
func (r *replayer) replayMetadataSeries(ctx context.Context, rs record.RefSeries) (bool, error) {
	fam, ok := metadataFamilyOf(rs.Labels)
	if !ok {
		return false, nil
	}
	h, err := r.i.getOrOpenTenant(ctx, rs.Labels.Get(tenantLabel))
	if err != nil {
		return true, err
	}
	if r.meta.refs == nil {
		r.meta.refs = map[chunks.HeadSeriesRef]metaRef{}
	}
	r.meta.refs[rs.Ref] = metaRef{h: h, fam: fam}
	return true, nil
}

// replayExemplarsOrMetadata applies an Exemplars or a Metadata record; an
// error means the record does not decode.
func (r *replayer) replayExemplarsOrMetadata(dec *record.Decoder, rec []byte) error {
	var err error
	if dec.Type(rec) == record.Exemplars {
		if r.meta.exemplars, err = dec.Exemplars(rec, r.meta.exemplars[:0]); err != nil {
			return fmt.Errorf("decode exemplars: %w", err)
		}
		r.replayExemplars(r.meta.exemplars)
		return nil
	}
	if r.meta.metadata, err = dec.Metadata(rec, r.meta.metadata[:0]); err != nil {
		return fmt.Errorf("decode metadata: %w", err)
	}
	for _, m := range r.meta.metadata {
		mr, ok := r.meta.refs[m.Ref]
		if !ok {
			continue // Metadata of a series ref: Argus writes none.
		}
		// The decoder's strings may alias the record buffer.
		mr.h.meta.insert(mr.fam, metaEntry{ref: m.Ref, typ: record.ToMetricType(m.Type),
			help: strings.Clone(m.Help), unit: strings.Clone(m.Unit), seen: r.nowMs})
	}
	return nil
}

// replayExemplars adds each exemplar to its series' tenant store, in WAL
// order, so that the store ends as it was; an exemplar of a series the
// replay does not know is skipped.
func (r *replayer) replayExemplars(exs []record.RefExemplar) {
	for _, re := range exs {
		rr, ok := r.refs[re.Ref]
		if !ok {
			continue
		}
		h := rr.h
		st := h.exemplars.sized(h.limiter.localExemplars(h.id), h.oooWindowMs())
		re.Labels = re.Labels.Copy() // The decoder's strings may alias the record buffer.
		h.addExemplar(st, h.series.syms.decode(rr.s.syms), re)
	}
}
