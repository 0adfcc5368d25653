package ring

import (
	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// sep separates the hashed strings. 0xff never occurs in valid UTF-8, so two
// different label sets can never hash the same byte stream.
var sep = []byte{0xff}

// ShardToken maps a series of a tenant to its token on the ring: xxhash over
// the tenant and the labels, sorted by name. It is a versioned contract: every
// live cluster places data by it, so changing it needs a migration plan (see
// the golden test). ls must be sorted, as labels.Labels always are.
func ShardToken(tenant string, ls labels.Labels) uint32 {
	d := xxhash.New()
	_, _ = d.WriteString(tenant)
	_, _ = d.Write(sep)
	ls.Range(func(l labels.Label) {
		_, _ = d.WriteString(l.Name)
		_, _ = d.Write(sep)
		_, _ = d.WriteString(l.Value)
		_, _ = d.Write(sep)
	})
	return fold(d.Sum64())
}

// ShardTokenProto is ShardToken over the labels of a WriteRequest, which must
// already be sorted by name (the distributor sorts them). It returns what
// ShardToken returns for the same labels, without building a labels.Labels.
func ShardTokenProto(tenant string, ls []*arguspb.Label) uint32 {
	d := xxhash.New()
	_, _ = d.WriteString(tenant)
	_, _ = d.Write(sep)
	for _, l := range ls {
		_, _ = d.WriteString(l.Name)
		_, _ = d.Write(sep)
		_, _ = d.WriteString(l.Value)
		_, _ = d.Write(sep)
	}
	return fold(d.Sum64())
}

func fold(h uint64) uint32 { return uint32(h) ^ uint32(h>>32) }
