package ingester

import (
	"context"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/argus-tsdb/argus/storage"
)

// dbDir is the directory of the ingester's storage.DB under -storage.path.
const dbDir = "db"

// chunkDB is what the ingester needs of its persistent store, one for every
// tenant: *storage.DB implements it.
type chunkDB interface {
	Append(tenant string, batch []storage.Series) error
	LastTime(tenant string, lbls labels.Labels) (int64, bool, error)
	Select(tenant string, mint, maxt int64, opts storage.SelectOptions, ms ...*labels.Matcher) ([]storage.Series, error)
	LabelNames(tenant string, mint, maxt int64, ms ...*labels.Matcher) ([]string, error)
	LabelValues(tenant, name string, mint, maxt int64, ms ...*labels.Matcher) ([]string, error)
	Compact(ctx context.Context, sealBefore int64) error
	ApplyRetention(ctx context.Context, p storage.RetentionPolicy) error
	Close() error
}

// tenantStore is one tenant's view of the DB, with the methods the head's
// reads and flushes call.
type tenantStore struct {
	db     chunkDB
	tenant string
}

func (s tenantStore) Append(batch []storage.Series) error { return s.db.Append(s.tenant, batch) }

func (s tenantStore) LastTime(lbls labels.Labels) (int64, bool, error) {
	return s.db.LastTime(s.tenant, lbls)
}

func (s tenantStore) Select(mint, maxt int64, opts storage.SelectOptions, ms ...*labels.Matcher) ([]storage.Series, error) {
	return s.db.Select(s.tenant, mint, maxt, opts, ms...)
}

func (s tenantStore) LabelNames(mint, maxt int64, ms ...*labels.Matcher) ([]string, error) {
	return s.db.LabelNames(s.tenant, mint, maxt, ms...)
}

func (s tenantStore) LabelValues(name string, mint, maxt int64, ms ...*labels.Matcher) ([]string, error) {
	return s.db.LabelValues(s.tenant, name, mint, maxt, ms...)
}
