package scraper

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	pushedSamples *prometheus.CounterVec
	pushFailures  *prometheus.CounterVec
	reloads       *prometheus.CounterVec
	reloadOK      prometheus.Gauge
	ownedTargets  prometheus.Gauge
	allTargets    prometheus.Gauge
	members       prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		pushedSamples: f.NewCounterVec(prometheus.CounterOpts{
			Name: "argus_scraper_pushed_samples_total", Help: "Scraped samples (floats, histograms and staleness markers) pushed and stored (with -scraper.wal-dir: written to the queue, whose sends argus_scraper_queue_sent_requests_total counts), by tenant.",
		}, []string{"tenant"}),
		pushFailures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "argus_scraper_push_failures_total", Help: "Pushes of one scrape's samples that failed or were partly refused, by tenant; the scrape loop logs each.",
		}, []string{"tenant"}),
		reloads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "argus_scraper_config_reloads_total", Help: "Reloads of -scraper.config-file, by outcome (success, failure).",
		}, []string{"outcome"}),
		reloadOK: f.NewGauge(prometheus.GaugeOpts{
			Name: "argus_scraper_config_last_reload_successful", Help: "1 if the last reload of -scraper.config-file succeeded, 0 if the last good configuration is still running.",
		}),
		ownedTargets: f.NewGauge(prometheus.GaugeOpts{
			Name: "argus_scraper_owned_targets", Help: "Targets this scraper owns on the ring of scrapers (after relabelling).",
		}),
		allTargets: f.NewGauge(prometheus.GaugeOpts{
			Name: "argus_scraper_discovered_targets", Help: "Targets every scraper discovers (after relabelling), which the ring shares out.",
		}),
		members: f.NewGauge(prometheus.GaugeOpts{
			Name: "argus_scraper_ring_members", Help: "Alive scrapers that share the targets.",
		}),
	}
}
