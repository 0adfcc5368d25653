package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/argus-tsdb/argus/ring"
)

// replicaRing is what the distributor and the querier read from the ring,
// whichever store backs it.
type replicaRing interface {
	Get(token uint32, buf []ring.Instance) ([]ring.Instance, error)
	ReplicationFactor() int
	ReadSet() (instances []ring.Instance, maxFailures int, err error)
	HealthyInstancesCount() int
	HealthyMembers(role string) int
	Instances() []ring.Instance
}

// lateRing is the ring as the ingester sees it, bound once the ring exists
// (before any service starts, so before any push reads it).
type lateRing struct{ r replicaRing }

func (l *lateRing) HealthyInstancesCount() int { return l.r.HealthyInstancesCount() }
func (l *lateRing) ReplicationFactor() int     { return l.r.ReplicationFactor() }

// setupRing builds the ring of the process. With the static store it is
// this process's ingester (or -ingester.client.addresses). With memberlist
// every process joins the gossip, and an ingester registers itself through
// a lifecycler: JOINING until its WAL is replayed, then ACTIVE; LEAVING
// when it stops, then LEFT once it has flushed.
func (a *app) setupRing(mux *http.ServeMux) (replicaRing, error) {
	if a.cfg.ringStore() == ringStoreStatic {
		addrs := a.ingesterAddresses()
		instances := make([]ring.Instance, 0, len(addrs))
		for _, addr := range addrs {
			instances = append(instances, ring.Instance{ID: addr, Addr: addr})
		}
		rf := min(a.cfg.Ring.ReplicationFactor, len(instances))
		static, err := ring.NewStaticWithOptions([]ring.StaticOption{ring.WithStaticReplicationFactor(rf)}, instances...)
		if err != nil {
			return nil, err
		}
		mux.Handle("/ring", static.RingHandler())
		mux.HandleFunc("/memberlist", staticMemberlistPage)
		return static, nil
	}
	deps := ring.Deps{Logger: a.logger, Registerer: a.reg, Roles: a.cfg.roleList()}
	if a.ingester != nil {
		deps.InstanceID = a.cfg.Ring.InstanceID // Down for writes as soon as the gossip declares this process dead.
	}
	if a.cfg.Roles()[roleRuler] {
		// The others ask this ruler for its rule groups (ruler.Lister).
		deps.GRPCAddr = hostPort(a.cfg.Server.GRPCListenAddress, a.cfg.Server.GRPCListenPort)
	}
	kv, err := ring.NewKV(a.cfg.Memberlist, a.cfg.Ring.Options(), deps)
	if err != nil {
		return nil, fmt.Errorf("ring: %w", err)
	}
	a.services = append(a.services, namedService("memberlist", kv))
	mux.Handle("/ring", kv.RingHandler())
	mux.Handle("/memberlist", kv.MembersHandler())
	return kv, nil
}

// staticMemberlistPage answers /memberlist for a process whose ring is
// static: it gossips with no one, and says so rather than 404.
func staticMemberlistPage(w http.ResponseWriter, r *http.Request) {
	if wantsJSONAnswer(r) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"self":"","members":[],"static":true}` + "\n"))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Argus memberlist</title></head>
<body><h1>Memberlist</h1><p>This process does not gossip: its ring is static (-ingester.ring.store=static, the default of -target=all without -memberlist.join), so it has no gossip members. <a href="/ring">The ring</a> lists its ingesters.</p></body></html>
`))
}

func wantsJSONAnswer(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// addLifecycler registers the ingester in the gossiped ring. It must be
// called after the ingester's service is added, so that the ingester has
// replayed its WAL before the activator turns it ACTIVE, and stops (and
// flushes) after the activator turned it LEAVING.
func (a *app) addLifecycler(kv replicaRing) error {
	k, ok := kv.(*ring.KV)
	if !ok || a.ingester == nil {
		return nil
	}
	lc, err := ring.NewLifecycler(a.cfg.Ring, k, ring.Deps{Logger: a.logger, Registerer: a.reg})
	if err != nil {
		return fmt.Errorf("lifecycler: %w", err)
	}
	// The lifecycler starts before the ingester (it registers JOINING while
	// the WAL replays) and stops after it (LEFT only once flushed).
	for i, s := range a.services {
		if s.Name == "ingester" {
			a.services = append(a.services[:i], append([]serviceEntry{namedService("lifecycler", lc)}, a.services[i:]...)...)
			break
		}
	}
	a.services = append(a.services, namedService("ring-activator", &activator{lc: lc}))
	return nil
}

// activator turns the ingester ACTIVE once every service before it (the
// ingester's WAL replay included) has started, and LEAVING first thing on
// stop, before the ingester stops accepting pushes and flushes.
type activator struct{ lc *ring.Lifecycler }

func (r *activator) Starting(ctx context.Context) error { return r.lc.SetActive(ctx) }

func (r *activator) Running(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func (r *activator) Stopping(ctx context.Context) error { return r.lc.StartLeaving(ctx) }
