// Package scraper is the scraper role: Prometheus's own discovery and
// scrape loop inside Argus, its targets sharded over every scraper of the
// cluster, its samples pushed through the distributor.
//
// The configuration (-scraper.config-file) is a prometheus.yml, parsed by
// Prometheus's config package; discovery.Manager finds the targets and
// scrape.Manager scrapes them, both unchanged. What is Argus's own:
//
//   - the shard filter (shard.go) between the two: every scraper discovers
//     every target and keeps those whose relabelled labels hash, on a ring
//     of the alive scrapers (from the memberlist gossip), to itself;
//   - the appender (appender.go): one scrape's samples become one
//     remote-write request of the target's tenant (-scraper.tenant, or the
//     target label __tenant__ set by relabelling), handed to a Pusher: the
//     distributor's push handler in-process, or a remote-write URL;
//   - reloads (SIGHUP, POST /-/reload) that keep the last good configuration
//     when a new one is refused, and the targets pages (api.go);
//   - with -scraper.monitors.enabled, the jobs of the Prometheus Operator's
//     ServiceMonitor and PodMonitor resources (package monitors), added to
//     the file's on every load and re-applied whenever a resource changes.
//
// See DESIGN.md for why and for the bounds on moving targets.
package scraper
