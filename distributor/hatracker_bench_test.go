package distributor

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// BenchmarkPushHandlerHA measures BenchmarkPushHandler's push (1000 series,
// 10 labels, replication factor 3, raw forwarding) through the HA step:
// off (the tracker disabled: the cost every tenant pays when HA tracking
// is off); on for a tenant whose series carry no HA labels; the elected
// replica's push (the replica label removed from every series); and the
// other replica's push, answered 202.
func BenchmarkPushHandlerHA(b *testing.B) {
	const numSeries = 1000
	plain := benchRequest(numSeries)
	ha := plain.CloneVT()
	for _, ts := range ha.Timeseries {
		// __replica__ sorts right after __name__; cluster is already there.
		ts.Labels = slices.Insert(ts.Labels, 1, &arguspb.Label{Name: "__replica__", Value: "r1"})
	}
	for _, bc := range []struct {
		name    string
		enabled bool
		req     *arguspb.WriteRequest
		elected string
		want    int
	}{
		{"off", false, ha, "", http.StatusNoContent},
		{"on/no-ha-labels", true, plain, "", http.StatusNoContent},
		{"on/elected", true, ha, "r1", http.StatusNoContent},
		{"on/not-elected", true, ha, "r2", http.StatusAccepted},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d, _, _ := newReplicated(b, 3, 3, nil)
			lim := defaultLimits(b)
			lim.IngestionRate, lim.AcceptHASamples, lim.MaxLabelNamesPerSeries = 0, true, 30
			d.limits = tenantLimitsMap{def: lim}
			d.clients = ClientFactoryFunc(func(string) (Pusher, error) { return fakeIngesterRaw{}, nil })
			if bc.enabled {
				store := ring.NewHAElections()
				d.ha = newHATracker(HATrackerConfig{UpdateTimeout: time.Hour, FailoverTimeout: 2 * time.Hour}, store, nil)
				if bc.elected != "" {
					store.UpdateHAElection(testTenant, "prod-eu-1", ring.HAElection{}, ring.HAElection{Replica: bc.elected, ElectedAtMillis: testNow.UnixMilli(), ReceivedAtMillis: testNow.UnixMilli()})
				}
			}
			body := encode(b, bc.req)
			h := d.PushHandler()
			r := newPushRequest(body)
			rd := bytes.NewReader(body)
			w := &discardWriter{h: http.Header{}}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(body)
				r.Body = io.NopCloser(rd)
				h.ServeHTTP(w, r)
				if w.code != bc.want {
					b.Fatalf("status %d, want %d", w.code, bc.want)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(numSeries*b.N), "ns/sample")
		})
	}
}
