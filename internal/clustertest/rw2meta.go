package clustertest

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
)

// RW2MetadataQueries are the /metadata requests the remote write 2.0
// metadata tests compare, for an ExmetaExporter's families.
var RW2MetadataQueries = []url.Values{
	nil,
	{"metric": {"exmeta_latency_seconds"}},
	{"metric": {"exmeta_rpc_seconds"}},
	{"metric": {"exmeta_errors_total"}},
	{"limit_per_metric": {"1"}},
	{"limit": {"1000"}},
}

// GetRW2Metadata returns get's answers (a server's API below /api/v1) to
// RW2MetadataQueries, as GetMetadata returns them.
func GetRW2Metadata(t testing.TB, get func(path string, params url.Values) (int, []byte)) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, q := range RW2MetadataQueries {
		out = append(out, GetMetadata(t, get, q))
	}
	return out
}

// scrapeSeriesMetadata is the metadata Prometheus sends over remote write
// 2.0 for the series it makes for each scrape (up, scrape_*), which its own
// /metadata does not list (it lists what targets expose) and Argus does
// (docs/api.md), formatted as fmt prints GetMetadata's entries.
var scrapeSeriesMetadata = map[string]string{
	"up":                                    "map[help:Health of the scrape target. 1 means the target is healthy, 0 if the scrape failed. type:gauge unit:targets]",
	"scrape_duration_seconds":               "map[help:Duration of the last scrape in seconds. type:gauge unit:seconds]",
	"scrape_samples_post_metric_relabeling": "map[help:Number of samples remaining after metric relabeling was applied. type:gauge unit:samples]",
	"scrape_samples_scraped":                "map[help:Number of samples last scraped. type:gauge unit:samples]",
	"scrape_series_added":                   "map[help:Number of series in the last scrape. type:gauge unit:series]",
}

// withoutScrapeSeries removes from Argus's answers to RW2MetadataQueries the
// metadata of Prometheus's scrape series, which the answers not limited to
// one metric must hold exactly; it reports what differs from that.
func withoutScrapeSeries(got []map[string]any) ([]map[string]any, string) {
	for k := range got { // got[k] answers RW2MetadataQueries[k]
		if RW2MetadataQueries[k].Has("metric") {
			continue
		}
		for name, entry := range scrapeSeriesMetadata {
			if e, ok := got[k][name]; !ok || fmt.Sprint(e) != "["+entry+"]" {
				return nil, fmt.Sprintf("%v: %s is %v, want [%s]", RW2MetadataQueries[k], name, got[k][name], entry)
			}
			delete(got[k], name)
		}
	}
	return got, ""
}

// AwaitRW2Metadata waits for Prometheus (promGet) to list every family of an
// ExmetaExporter served in the text format, and for Argus (argusGet), fed by
// that Prometheus over remote write 2.0, to answer RW2MetadataQueries
// exactly as Prometheus does, plus the metadata of Prometheus's scrape
// series. It returns both servers' answers.
func AwaitRW2Metadata(t testing.TB, promGet, argusGet func(path string, params url.Values) (int, []byte)) (want, argus []map[string]any) {
	t.Helper()
	Eventually(t, func() string {
		want = GetRW2Metadata(t, promGet)
		if _, ok := want[0]["exmeta_rpc_seconds"]; !ok || len(want[0]) < 30 {
			return fmt.Sprintf("prometheus has not scraped every family yet: %d", len(want[0]))
		}
		argus = GetRW2Metadata(t, argusGet)
		got, bad := withoutScrapeSeries(GetRW2Metadata(t, argusGet))
		if bad != "" {
			return bad
		}
		return gocmp.Diff(want, got)
	}, 60*time.Second)
	return want, argus
}
