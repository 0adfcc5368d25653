package ingester

import (
	"context"
	"os"
	"path/filepath"
	"slices"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/argus-tsdb/argus/storage"
)

// interimDB is a stand-in for storage.DB until its bodies land: every
// tenant's series in one storage.ChunkStore file, the tenant kept as the
// reserved label tenantLabel. It has no partitions, so Compact and
// ApplyRetention do nothing. To be removed with the merge of storage.DB.
type interimDB struct {
	store *storage.ChunkStore
}

func openInterimDB(dir string) (*interimDB, error) {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, err
	}
	s, err := storage.Open(filepath.Join(dir, "chunks.db"), storage.Options{})
	if err != nil {
		return nil, err
	}
	return &interimDB{store: s}, nil
}

func (d *interimDB) Append(tenant string, batch []storage.Series) error {
	b := make([]storage.Series, len(batch))
	for k := range batch {
		b[k] = storage.Series{Labels: withTenant(batch[k].Labels, tenant), Chunks: batch[k].Chunks}
	}
	return d.store.Append(b)
}

func (d *interimDB) LastTime(tenant string, lbls labels.Labels) (int64, bool, error) {
	return d.store.LastTime(withTenant(lbls, tenant))
}

func (d *interimDB) Select(tenant string, mint, maxt int64, opts storage.SelectOptions, ms ...*labels.Matcher) ([]storage.Series, error) {
	out, err := d.store.Select(mint, maxt, opts, tenantMatchers(tenant, ms)...)
	for k := range out {
		out[k].Labels = withoutTenant(out[k].Labels)
	}
	return out, err
}

func (d *interimDB) LabelNames(tenant string, mint, maxt int64, ms ...*labels.Matcher) ([]string, error) {
	names, err := d.store.LabelNames(mint, maxt, tenantMatchers(tenant, ms)...)
	return slices.DeleteFunc(names, func(n string) bool { return n == tenantLabel }), err
}

func (d *interimDB) LabelValues(tenant, name string, mint, maxt int64, ms ...*labels.Matcher) ([]string, error) {
	if name == tenantLabel {
		return nil, nil
	}
	return d.store.LabelValues(name, mint, maxt, tenantMatchers(tenant, ms)...)
}

func (d *interimDB) Compact(context.Context, int64) error { return nil }

func (d *interimDB) ApplyRetention(context.Context, storage.RetentionPolicy) error { return nil }

func (d *interimDB) Close() error { return d.store.Close() }

func tenantMatchers(tenant string, ms []*labels.Matcher) []*labels.Matcher {
	return append(slices.Clip(ms), labels.MustNewMatcher(labels.MatchEqual, tenantLabel, tenant))
}
