package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/argus-tsdb/argus/internal/auth"
	"github.com/argus-tsdb/argus/ring"
	"github.com/argus-tsdb/argus/scraper"
)

// addScraper runs the scraper role: it pushes to -scraper.remote-write-url
// if set (through the queue of -scraper.wal-dir if that is set), else in-process to this process's distributor; it shares the
// targets with the other scrapers of the gossip cluster, if there is one.
// It is added last, so that it starts after the distributor and the
// ingester and stops (its last pushes done) before them.
func (a *app) addScraper(mux *http.ServeMux, rr replicaRing) error {
	deps := scraper.Deps{Logger: a.logger.With("component", "scraper"), Registerer: a.reg}
	if c := a.cfg.Scraper; c.RemoteWriteURL != "" {
		deps.Pusher = scraper.NewRemoteWriter(c.RemoteWriteURL, c.RemoteTimeout)
		if c.WALDir != "" {
			// Added before the scraper: it starts first and stops after
			// the scraper's last push.
			q := scraper.NewQueue(scraper.QueueConfig{Dir: c.WALDir, MaxBytes: c.WALMaxBytes}, deps.Pusher, deps.Logger, a.reg)
			a.services = append(a.services, namedService("scraper-queue", q))
			deps.Pusher = q
		}
	} else {
		deps.Pusher = scraper.NewHandlerPusher(a.push)
	}
	if kv, ok := rr.(*ring.KV); ok {
		deps.Membership = kv
	}
	s, err := scraper.New(a.cfg.Scraper, deps)
	if err != nil {
		return fmt.Errorf("scraper: %w", err)
	}
	a.scraper = s
	a.services = append(a.services, namedService("scraper", s))
	mux.Handle(scraper.TargetsPath, a.auth.Middleware(s.TargetsHandler(), auth.OneTenant))
	mux.Handle(scraper.TargetsMetadataPath, a.auth.Middleware(s.TargetsMetadataHandler(), auth.OneTenant))
	mux.Handle(scraper.StatusPath, s.StatusHandler())
	mux.Handle(scraper.ReloadPath, s.ReloadHandler())
	return nil
}

// reloadOnSIGHUP reloads the scraper's configuration on every SIGHUP until
// ctx ends; a refused file is logged by Reload and the old one keeps
// running. Without a scraper SIGHUP is ignored.
func (a *app) reloadOnSIGHUP(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if a.scraper != nil {
				_ = a.scraper.Reload() // Reload logs the outcome.
			}
		}
	}
}
