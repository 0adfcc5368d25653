package ingester

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// Metric metadata: per tenant, per metric family, the distinct (type, help,
// unit) entries pushed (remote-write 1.0 sends each family's every minute,
// from the scrape targets' caches). Prometheus serves /api/v1/metadata from
// the targets it scrapes now; Argus serves the entries pushed within the
// last metadataRetainPeriod (Mimir's -ingester.metadata-retain-period
// default), so that a family whose targets are gone leaves the answer.
//
// # Durability
//
// Prometheus's WAL keys metadata by series ref (record.Metadata), and its
// checkpoint keeps the newest metadata of each ref the keep function keeps.
// A family is not a series, so each entry gets a ref of its own, from the
// ingester's series ref counter, and a series record that names it: the
// label set {__argus_metadata__=<family>, __argus_tenant__=<tenant>}, with no
// __name__, which no pushed series has (the distributor requires a metric
// name, and replay tells the two apart by it). An entry is logged once, when
// it is new; a push that repeats it only refreshes its last-seen time. The
// checkpoint keeps the records of the entries the store holds
// (tenantHead.appendRefs), so metadata survives restarts and truncations;
// after a restart every replayed entry counts as seen at the replay.
// Entries past the retain period are dropped at the next truncation, and
// with them their records.

// metadataLabel names the family of a metadata entry's series record.
const metadataLabel = "__argus_metadata__"

// metadataRetainPeriod is how long an entry is served after its last push.
const metadataRetainPeriod = 10 * time.Minute

// maxMetadataPerFamily bounds the entries of one family: a family whose help
// changes on every push keeps its newest ones.
const maxMetadataPerFamily = 10

// metaEntry is one metadata entry of a family.
type metaEntry struct {
	ref  chunks.HeadSeriesRef
	typ  model.MetricType
	help string
	unit string
	seen int64 // Unix ms of the last push (or of the replay) that carried it
}

func (e *metaEntry) same(o *metaEntry) bool {
	return e.typ == o.typ && e.help == o.help && e.unit == o.unit
}

// metadataStore is the metadata of one tenant. Safe for concurrent use; mu
// is a leaf lock. Entries are added under the head's appendMu only.
type metadataStore struct {
	mu       sync.Mutex
	families map[string][]metaEntry // guarded by mu
}

// touch refreshes the last-seen time of the entries of ms the store holds
// and returns the others, deduplicated, in order.
func (m *metadataStore) touch(fams []string, ms []metaEntry, nowMs int64) (newFams []string, newMs []metaEntry) {
	m.mu.Lock()
	defer m.mu.Unlock()
next:
	for k := range ms {
		es := m.families[fams[k]]
		for j := range es {
			if es[j].same(&ms[k]) {
				es[j].seen = nowMs
				continue next
			}
		}
		for j := range newMs {
			if newFams[j] == fams[k] && newMs[j].same(&ms[k]) {
				continue next
			}
		}
		newFams, newMs = append(newFams, fams[k]), append(newMs, ms[k])
	}
	return newFams, newMs
}

// insert adds the entry e of family fam, dropping the family's least
// recently seen entry past maxMetadataPerFamily.
func (m *metadataStore) insert(fam string, e metaEntry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.families == nil {
		m.families = map[string][]metaEntry{}
	}
	es := append(m.families[fam], e)
	if len(es) > maxMetadataPerFamily {
		oldest := 0
		for j := range es {
			if es[j].seen < es[oldest].seen {
				oldest = j
			}
		}
		es = slices.Delete(es, oldest, oldest+1)
	}
	m.families[fam] = es
}

// appendRefs drops the entries not seen since minSeen and appends the refs
// of the others.
func (m *metadataStore) appendRefs(dst []chunks.HeadSeriesRef, minSeen int64) []chunks.HeadSeriesRef {
	m.mu.Lock()
	defer m.mu.Unlock()
	for fam, es := range m.families {
		es = slices.DeleteFunc(es, func(e metaEntry) bool { return e.seen < minSeen })
		if len(es) == 0 {
			delete(m.families, fam)
			continue
		}
		m.families[fam] = es
		for _, e := range es {
			dst = append(dst, e.ref)
		}
	}
	return dst
}

// list returns the entries seen since minSeen, of family metric only if not
// empty, sorted by family, type, help and unit, with at most limit families
// and perMetric entries each (0: no limit).
func (m *metadataStore) list(metric string, minSeen int64, limit, perMetric int) []*arguspb.MetricMetadata {
	m.mu.Lock()
	defer m.mu.Unlock()
	fams := make([]string, 0, len(m.families))
	for fam := range m.families {
		if metric == "" || fam == metric {
			fams = append(fams, fam)
		}
	}
	slices.Sort(fams)
	var out []*arguspb.MetricMetadata
	kept := 0
	for _, fam := range fams {
		if limit > 0 && kept >= limit {
			break
		}
		start := len(out)
		for _, e := range m.families[fam] {
			if e.seen >= minSeen {
				out = append(out, &arguspb.MetricMetadata{MetricFamilyName: fam, Type: string(e.typ), Help: e.help, Unit: e.unit})
			}
		}
		if len(out) == start {
			continue
		}
		slices.SortFunc(out[start:], compareMetadata)
		if perMetric > 0 && len(out)-start > perMetric {
			clear(out[start+perMetric:])
			out = out[:start+perMetric]
		}
		kept++
	}
	return out
}

// compareMetadata orders metadata by family, type, help and unit.
func compareMetadata(a, b *arguspb.MetricMetadata) int {
	return cmp.Or(strings.Compare(a.GetMetricFamilyName(), b.GetMetricFamilyName()), strings.Compare(a.GetType(), b.GetType()),
		strings.Compare(a.GetHelp(), b.GetHelp()), strings.Compare(a.GetUnit(), b.GetUnit()))
}

// decodeMetadata decodes the metadata entries of a push, skipping those that
// do not decode or name no family (the distributor refuses both).
func decodeMetadata(raw [][]byte) (fams []string, ms []metaEntry) {
	for _, b := range raw {
		var pm prompb.MetricMetadata
		if err := pm.Unmarshal(b); err != nil || pm.MetricFamilyName == "" {
			continue
		}
		fams = append(fams, pm.MetricFamilyName)
		ms = append(ms, metaEntry{typ: metricTypeOf(pm.Type), help: pm.Help, unit: pm.Unit})
	}
	return fams, ms
}

// metricTypeOf maps the remote-write enum to Prometheus's type names.
func metricTypeOf(t prompb.MetricMetadata_MetricType) model.MetricType {
	if _, ok := prompb.MetricMetadata_MetricType_name[int32(t)]; !ok {
		return model.MetricTypeUnknown
	}
	return model.MetricType(strings.ToLower(t.String()))
}

// appendMetadata stores the metadata entries of a push: the new ones are
// WAL-logged (a series record and a metadata record each) and then added,
// the known ones refreshed. With -ingester.wal-sync-period=0 it returns once
// an fsync covers the records.
func (h *tenantHead) appendMetadata(raw [][]byte) error {
	if len(raw) == 0 {
		return nil
	}
	fams, ms := decodeMetadata(raw)
	seq, err := h.appendMetadataLocked(fams, ms)
	if err != nil || seq == 0 || h.cfg.WALSyncPeriod != 0 {
		return err
	}
	return h.wal.syncTo(seq)
}

// appendMetadataLocked is appendMetadata under appendMu and the WAL's cutMu:
// an entry is in the store before a truncation computes what its
// checkpoint keeps.
func (h *tenantHead) appendMetadataLocked(fams []string, ms []metaEntry) (uint64, error) {
	h.appendMu.Lock()
	defer h.appendMu.Unlock()
	if h.closed.Load() {
		return 0, errHeadClosed
	}
	nowMs := h.nowMs()
	fams, ms = h.meta.touch(fams, ms, nowMs)
	if len(ms) == 0 {
		return 0, nil
	}
	if err := h.wal.failed(); err != nil {
		return 0, err
	}
	series := make([]record.RefSeries, len(ms))
	metas := make([]record.RefMetadata, len(ms))
	for k := range ms {
		ms[k].ref, ms[k].seen = chunks.HeadSeriesRef(h.lastRef.Add(1)), nowMs
		series[k] = record.RefSeries{Ref: ms[k].ref, Labels: labels.FromStrings(metadataLabel, fams[k], tenantLabel, h.id)}
		metas[k] = record.RefMetadata{Ref: ms[k].ref, Type: record.GetMetricType(ms[k].typ), Unit: ms[k].unit, Help: ms[k].help}
	}
	var enc record.Encoder
	buf := enc.Series(series, nil)
	n := len(buf)
	buf = enc.Metadata(metas, buf)
	h.wal.cutMu.RLock()
	defer h.wal.cutMu.RUnlock()
	seq, err := h.wal.log([][]byte{buf[:n], buf[n:]})
	if err != nil {
		return 0, err
	}
	for k := range ms {
		h.meta.insert(fams[k], ms[k])
	}
	return seq, nil
}

// metadataFamilyOf returns the family of a metadata entry's series record.
func metadataFamilyOf(lset labels.Labels) (string, bool) {
	fam := lset.Get(metadataLabel)
	return fam, fam != "" && lset.Get(labels.MetricName) == ""
}

// MetricsMetadata returns the metadata of the tenant of ctx seen within the
// retain period, sorted by family, type, help and unit. A limit of 0 or
// less is no limit.
func (i *Ingester) MetricsMetadata(ctx context.Context, req *arguspb.MetricsMetadataRequest) (*arguspb.MetricsMetadataResponse, error) {
	h, err := i.queryHead(ctx, queryTypeMetadata)
	if err != nil || h == nil {
		return &arguspb.MetricsMetadataResponse{}, grpcError(err)
	}
	minSeen := h.nowMs() - metadataRetainPeriod.Milliseconds()
	return &arguspb.MetricsMetadataResponse{
		Metadata: h.meta.list(req.GetMetric(), minSeen, int(req.GetLimit()), int(req.GetLimitPerMetric())),
	}, nil
}
