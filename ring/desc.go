package ring

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"time"
)

// State is the lifecycle state of an instance in the ring. The numeric order
// is the lifecycle order and is used to break heartbeat ties in Merge.
type State uint8

// Instance states. UNHEALTHY is not a state: it is derived from a heartbeat
// older than the heartbeat timeout (see Ring).
const (
	StateJoining State = iota + 1 // registered, tokens claimed, not yet taking writes
	StateActive                   // takes writes and reads
	StateLeaving                  // stopping: serves reads, takes no writes
	StateLeft                     // gone: a tombstone that keeps old gossip from resurrecting it
)

// String returns the upper-case name of s.
func (s State) String() string {
	switch s {
	case StateJoining:
		return "JOINING"
	case StateActive:
		return "ACTIVE"
	case StateLeaving:
		return "LEAVING"
	case StateLeft:
		return "LEFT"
	default:
		return fmt.Sprintf("STATE(%d)", uint8(s))
	}
}

// InstanceDesc is what the ring knows of one instance. Its owner (the
// instance's Lifecycler) is the only writer, except that any member may
// overwrite it with a LEFT tombstone (Forget, auto-forget). Tokens are sorted
// and distinct. Times are Unix milliseconds.
type InstanceDesc struct {
	Addr                string   `json:"addr"`
	Zone                string   `json:"zone,omitempty"`
	State               State    `json:"state"`
	Tokens              []uint32 `json:"tokens,omitempty"`
	HeartbeatUnixMillis int64    `json:"heartbeat_unix_millis"`
	RegisteredAt        int64    `json:"registered_at_unix_millis"`
}

// Heartbeat returns the heartbeat time.
func (d InstanceDesc) Heartbeat() time.Time { return time.UnixMilli(d.HeartbeatUnixMillis) }

// compareInstanceDesc is the total order that Merge keeps the maximum of:
// heartbeat, then state (lifecycle order), then every other field. Two
// descriptions compare equal only when they are identical.
func compareInstanceDesc(a, b InstanceDesc) int {
	if c := cmp.Compare(a.HeartbeatUnixMillis, b.HeartbeatUnixMillis); c != 0 {
		return c
	}
	if c := cmp.Compare(a.State, b.State); c != 0 {
		return c
	}
	if c := cmp.Compare(a.RegisteredAt, b.RegisteredAt); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Addr, b.Addr); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Zone, b.Zone); c != 0 {
		return c
	}
	return slices.Compare(a.Tokens, b.Tokens)
}

// Desc is the ring state: instance ID → description. It is a CRDT (a
// map of last-writer-wins registers, see Merge and DESIGN.md). A Desc is not
// safe for concurrent mutation; Clone before sharing.
type Desc struct {
	Instances map[string]InstanceDesc `json:"instances"`
}

// NewDesc returns an empty ring state.
func NewDesc() *Desc { return &Desc{Instances: map[string]InstanceDesc{}} }

// Clone returns a deep copy of d.
func (d *Desc) Clone() *Desc {
	c := &Desc{Instances: make(map[string]InstanceDesc, len(d.Instances))}
	for id, in := range d.Instances {
		in.Tokens = slices.Clone(in.Tokens)
		c.Instances[id] = in
	}
	return c
}

// Merge merges other into d and returns the IDs whose description changed in
// d, sorted. For every instance, the description that is greatest in the
// order (heartbeat, state, other fields) wins; so Merge is idempotent,
// commutative and associative. other is not modified and is not retained.
func (d *Desc) Merge(other *Desc) []string {
	if d.Instances == nil {
		d.Instances = map[string]InstanceDesc{}
	}
	var changed []string
	for id, theirs := range other.Instances {
		ours, ok := d.Instances[id]
		if ok && compareInstanceDesc(theirs, ours) <= 0 {
			continue
		}
		theirs.Tokens = slices.Clone(theirs.Tokens)
		d.Instances[id] = theirs
		changed = append(changed, id)
	}
	slices.Sort(changed)
	return changed
}

// RemoveTombstones deletes LEFT instances whose heartbeat is before cutoff and
// returns how many it removed. It is a local operation, not part of the CRDT:
// cutoff must be far enough in the past that no gossip older than it is still
// in flight (see DESIGN.md).
func (d *Desc) RemoveTombstones(cutoff time.Time) int {
	n := 0
	for id, in := range d.Instances {
		if in.State == StateLeft && in.HeartbeatUnixMillis < cutoff.UnixMilli() {
			delete(d.Instances, id)
			n++
		}
	}
	return n
}

// TakenTokens returns the tokens claimed by instances that are not LEFT,
// sorted, without duplicates.
func (d *Desc) TakenTokens() []uint32 {
	var ts []uint32
	for _, in := range d.Instances {
		if in.State != StateLeft {
			ts = append(ts, in.Tokens...)
		}
	}
	slices.Sort(ts)
	return slices.Compact(ts)
}

// Binary encoding, version 1:
//
//	byte    version (1)
//	uvarint number of instances
//	per instance, in ID order:
//	  string ID, string Addr, string Zone (uvarint length + bytes)
//	  byte   State
//	  varint HeartbeatUnixMillis, varint RegisteredAt
//	  uvarint number of tokens, then each token as the uvarint delta from the previous
const encodingVersion = 1

// maxDecodedTokens bounds what a decoder allocates for one instance.
const maxDecodedTokens = 1 << 16

// Encode appends the binary encoding of d to buf and returns it. The encoding
// is deterministic: equal descs encode to equal bytes.
func (d *Desc) Encode(buf []byte) []byte {
	buf = append(buf, encodingVersion)
	buf = binary.AppendUvarint(buf, uint64(len(d.Instances)))
	for _, id := range slices.Sorted(maps.Keys(d.Instances)) {
		in := d.Instances[id]
		buf = appendString(buf, id)
		buf = appendString(buf, in.Addr)
		buf = appendString(buf, in.Zone)
		buf = append(buf, byte(in.State))
		buf = binary.AppendVarint(buf, in.HeartbeatUnixMillis)
		buf = binary.AppendVarint(buf, in.RegisteredAt)
		buf = binary.AppendUvarint(buf, uint64(len(in.Tokens)))
		prev := uint32(0)
		for _, t := range in.Tokens {
			buf = binary.AppendUvarint(buf, uint64(t-prev))
			prev = t
		}
	}
	return buf
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// DecodeDesc decodes what Encode wrote. It rejects malformed input with an
// error wrapping ErrCorruptDesc, including unsorted or duplicate tokens and
// unknown states. The result does not reference b.
func DecodeDesc(b []byte) (*Desc, error) {
	r := decoder{b: b}
	if v := r.byte(); v != encodingVersion {
		return nil, corruptf("unknown version %d", v)
	}
	n := r.uvarint()
	if n > uint64(len(b)) {
		return nil, corruptf("%d instances in %d bytes", n, len(b))
	}
	d := &Desc{Instances: make(map[string]InstanceDesc, n)}
	for range n {
		id := r.string()
		in := InstanceDesc{Addr: r.string(), Zone: r.string(), State: State(r.byte())}
		in.HeartbeatUnixMillis = r.varint()
		in.RegisteredAt = r.varint()
		nt := r.uvarint()
		if r.err != nil {
			return nil, r.err
		}
		if in.State < StateJoining || in.State > StateLeft {
			return nil, corruptf("instance %q: unknown state %d", id, in.State)
		}
		if nt > maxDecodedTokens || nt > uint64(len(r.b)) {
			return nil, corruptf("instance %q: %d tokens", id, nt)
		}
		if nt > 0 {
			in.Tokens = make([]uint32, nt)
		}
		var prev uint64
		for i := range in.Tokens {
			delta := r.uvarint()
			if (i > 0 && delta == 0) || prev+delta > 1<<32-1 {
				return nil, corruptf("instance %q: tokens not sorted and distinct", id)
			}
			prev += delta
			in.Tokens[i] = uint32(prev)
		}
		if _, dup := d.Instances[id]; dup {
			return nil, corruptf("duplicate instance %q", id)
		}
		d.Instances[id] = in
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, corruptf("%d trailing bytes", len(r.b))
	}
	return d, nil
}

type decoder struct {
	b   []byte
	err error
}

func (r *decoder) fail(what string) {
	if r.err == nil {
		r.err = corruptf("truncated %s", what)
	}
	r.b = nil
}

func (r *decoder) byte() byte {
	if len(r.b) < 1 {
		r.fail("byte")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *decoder) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *decoder) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail("string")
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// Equal reports whether d and other hold the same instances.
func (d *Desc) Equal(other *Desc) bool {
	return bytes.Equal(d.Encode(nil), other.Encode(nil))
}
