package ring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"sync/atomic"
	"time"
)

// ErrLifecyclerStopped means the lifecycler's loop has ended (or not begun).
var ErrLifecyclerStopped = errors.New("lifecycler stopped")

// Lifecycler keeps one ingester's entry in the ring: it claims tokens
// (loaded from -ingester.ring.tokens-file-path, or taken over from the ring,
// or generated), registers JOINING, turns ACTIVE, heartbeats, auto-forgets
// dead members, and on stop goes LEAVING, then LEFT.
//
//	            Starting                SetActive (and join-after elapsed)
//	(absent) ──────────────► JOINING ──────────────────────────────► ACTIVE
//	                            │                                      │
//	                            │            StartLeaving / Stopping   │
//	                            └──────────────► LEAVING ◄─────────────┘
//	                                                │  Stopping (after the caller flushed)
//	                                                ▼
//	                                              LEFT
//
// It is a service: Starting registers and starts the actor loop, Running
// waits, Stopping leaves. Every state change and heartbeat runs inside the
// loop (other goroutines submit closures), so the instance's description has
// one writer. All methods are safe for concurrent use; the ones taking a
// context block until the loop ran the change or ctx is done.
type Lifecycler struct {
	cfg    Config
	kv     *KV
	logger *slog.Logger
	now    func() time.Time

	ops      chan func()
	stop     chan struct{} // closed by Stopping to end the loop
	loopDone chan struct{}
	started  atomic.Bool   // the loop was started
	stopped  atomic.Bool   // Stopping ran
	state    atomic.Uint32 // copy of desc.State for State()
	tokens   []uint32      // set by Starting, then read-only

	// Owned by the loop.
	desc            InstanceDesc
	activeRequested bool
	joinDelayPassed bool
}

// NewLifecycler returns the lifecycler of instance cfg.InstanceID, which
// publishes into kv. It does no I/O and starts nothing.
func NewLifecycler(cfg Config, kv *KV, deps Deps) (*Lifecycler, error) {
	if err := cfg.ValidateInstance(); err != nil {
		return nil, err
	}
	return &Lifecycler{
		cfg:      cfg,
		kv:       kv,
		logger:   deps.logger().With("component", "lifecycler", "instance", cfg.InstanceID),
		now:      kv.opts.Now,
		ops:      make(chan func()),
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}, nil
}

// ID returns the instance ID.
func (l *Lifecycler) ID() string { return l.cfg.InstanceID }

// State returns the instance's current state (0 before Starting).
func (l *Lifecycler) State() State { return State(l.state.Load()) }

// Tokens returns the instance's tokens, sorted; nil before Starting. The
// caller must not modify them.
func (l *Lifecycler) Tokens() []uint32 { return l.tokens }

// Starting claims the tokens, saves them, registers the instance JOINING
// and starts the loop. The KV must have started (and so merged the state of
// the members it joined), so that the new tokens avoid theirs.
func (l *Lifecycler) Starting(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tokens, err := l.claimTokens()
	if err != nil {
		return err
	}
	l.tokens = tokens
	now := l.now().UnixMilli()
	prev, known := l.kv.Desc().Instances[l.cfg.InstanceID]
	registered := now
	if known && prev.State != StateLeft && prev.RegisteredAt != 0 {
		registered = prev.RegisteredAt
	}
	l.desc = InstanceDesc{
		Addr:                l.cfg.advertisedAddr(),
		Zone:                l.cfg.InstanceZone,
		State:               StateJoining,
		Tokens:              tokens,
		HeartbeatUnixMillis: prev.HeartbeatUnixMillis, // publish moves it past now and past prev
		RegisteredAt:        registered,
	}
	l.publish()
	l.logger.Info("registered in the ring", "state", StateJoining.String(), "tokens", len(tokens), "addr", l.desc.Addr)
	l.started.Store(true)
	go l.loop()
	return nil
}

// claimTokens returns the tokens of the instance: from the tokens file, else
// from its (not LEFT) entry in the ring, else new BalancedTokens; and saves
// them if a tokens file is configured.
func (l *Lifecycler) claimTokens() ([]uint32, error) {
	var tokens []uint32
	if l.cfg.TokensFilePath != "" {
		t, err := LoadTokens(l.cfg.TokensFilePath)
		if err != nil {
			return nil, err
		}
		tokens = t
	}
	d := l.kv.Desc()
	if prev, ok := d.Instances[l.cfg.InstanceID]; len(tokens) == 0 && ok && prev.State != StateLeft {
		tokens = slices.Clone(prev.Tokens)
	}
	if len(tokens) == 0 {
		delete(d.Instances, l.cfg.InstanceID)
		tokens = BalancedTokens(rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), l.cfg.NumTokens, d)
	} else if len(tokens) != l.cfg.NumTokens {
		l.logger.Warn("keeping tokens whose count differs from num-tokens", "tokens", len(tokens), "num_tokens", l.cfg.NumTokens)
	}
	if l.cfg.TokensFilePath != "" {
		if err := SaveTokens(l.cfg.TokensFilePath, tokens); err != nil {
			return nil, err
		}
	}
	return tokens, nil
}

// Running returns nil when ctx is done, or an error if the loop ended early.
// The loop outlives it until Stopping, so that a caller's Stopping can still
// go LEAVING.
func (l *Lifecycler) Running(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-l.loopDone:
		return ErrLifecyclerStopped
	}
}

// Stopping goes LEAVING (if not yet), then LEFT, publishes it and ends the
// loop. Call it after the ingester flushed: LEFT takes the instance out of
// every read set. It is idempotent, and a no-op if Starting did not succeed.
func (l *Lifecycler) Stopping(ctx context.Context) error {
	if !l.started.Load() || l.stopped.Swap(true) {
		return nil
	}
	err := l.do(ctx, func() error {
		l.transition(StateLeaving)
		l.transition(StateLeft)
		return nil
	})
	close(l.stop)
	<-l.loopDone
	if err != nil {
		return fmt.Errorf("leave ring: %w", err)
	}
	l.logger.Info("left the ring")
	return nil
}

// SetActive asks the instance to turn ACTIVE: at once, or when
// -ingester.ring.join-after has elapsed since Starting. The ingester calls it
// once its WAL replay is done. It is a no-op unless the instance is JOINING.
func (l *Lifecycler) SetActive(ctx context.Context) error {
	return l.do(ctx, func() error {
		l.activeRequested = true
		l.maybeActivate()
		return nil
	})
}

// StartLeaving turns the instance LEAVING: it takes no more writes but
// still serves reads. The ingester calls it first in its own stop, then
// flushes; Stopping then turns it LEFT.
//
// It returns after -ingester.ring.leave-propagation-delay, so that the
// LEAVING state has gossiped to the distributors before the ingester stops
// taking pushes: without the wait they would keep sending to a stopped
// ingester until its LEFT state reached them. A fixed wait, because no
// process can observe when every other member has merged the update.
func (l *Lifecycler) StartLeaving(ctx context.Context) error {
	if err := l.do(ctx, func() error {
		l.transition(StateLeaving)
		return nil
	}); err != nil {
		return err
	}
	if l.cfg.LeavePropagationDelay <= 0 {
		return nil
	}
	t := time.NewTimer(l.cfg.LeavePropagationDelay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// do runs f inside the loop and returns its error.
func (l *Lifecycler) do(ctx context.Context, f func() error) error {
	errc := make(chan error, 1)
	select {
	case l.ops <- func() { errc <- f() }:
	case <-l.loopDone:
		return ErrLifecyclerStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *Lifecycler) loop() {
	defer close(l.loopDone)
	hb := time.NewTicker(l.cfg.HeartbeatPeriod)
	defer hb.Stop()
	joinAfter := time.NewTimer(l.cfg.JoinAfter)
	defer joinAfter.Stop()
	for {
		select {
		case <-l.stop:
			return
		case f := <-l.ops:
			f()
		case <-joinAfter.C:
			l.joinDelayPassed = true
			l.maybeActivate()
		case <-hb.C:
			l.publish()
			l.autoForget()
		}
	}
}

func (l *Lifecycler) maybeActivate() {
	if l.activeRequested && l.joinDelayPassed && l.desc.State == StateJoining {
		l.transition(StateActive)
	}
}

// transition moves the instance forward to s and publishes it; the state
// never moves backwards (LEAVING stays LEAVING).
func (l *Lifecycler) transition(s State) {
	if s <= l.desc.State {
		return
	}
	l.logger.Info("ring state change", "from", l.desc.State.String(), "to", s.String())
	l.desc.State = s
	l.publish()
}

// publish heartbeats: it writes the instance's description with a heartbeat
// newer than now and than any the ring holds for it (so that a Forget by
// another member, or a clock step back, cannot hide a live instance).
func (l *Lifecycler) publish() {
	l.desc.HeartbeatUnixMillis = max(l.now().UnixMilli(), l.desc.HeartbeatUnixMillis+1)
	cur := l.kv.Update(l.cfg.InstanceID, l.desc)
	if compareInstanceDesc(cur, l.desc) != 0 {
		l.logger.Warn("ring held a newer entry for this instance, overriding it", "state", cur.State.String())
		l.desc.HeartbeatUnixMillis = cur.HeartbeatUnixMillis + 1
		l.kv.Update(l.cfg.InstanceID, l.desc)
	}
	l.state.Store(uint32(l.desc.State))
}

// autoForget marks LEFT every other instance whose heartbeat is older than
// auto-forget-unhealthy-periods × heartbeat-timeout, oldest first, while at
// least a quorum (RF/2+1) of members that are not LEFT would remain.
func (l *Lifecycler) autoForget() {
	if l.cfg.AutoForgetUnhealthyPeriods <= 0 || l.cfg.HeartbeatTimeout <= 0 {
		return
	}
	cutoff := l.now().Add(-time.Duration(l.cfg.AutoForgetUnhealthyPeriods) * l.cfg.HeartbeatTimeout).UnixMilli()
	d := l.kv.Desc()
	members := 0
	var dead []string
	for id, in := range d.Instances {
		if in.State == StateLeft {
			continue
		}
		members++
		if id != l.cfg.InstanceID && in.HeartbeatUnixMillis < cutoff {
			dead = append(dead, id)
		}
	}
	sort.Slice(dead, func(i, j int) bool {
		return d.Instances[dead[i]].HeartbeatUnixMillis < d.Instances[dead[j]].HeartbeatUnixMillis
	})
	quorum := l.cfg.ReplicationFactor/2 + 1
	for _, id := range dead {
		if members-1 < quorum {
			l.kv.metrics.forgetHeld.Inc()
			l.logger.Warn("not auto-forgetting unhealthy instance, the ring would fall below quorum", "unhealthy", id, "members", members, "quorum", quorum)
			return
		}
		if err := l.kv.Forget(id); err == nil {
			l.logger.Info("auto-forgot unhealthy instance", "forgotten", id, "last_heartbeat", d.Instances[id].Heartbeat())
			members--
		}
	}
}
