package ring

import (
	"encoding/binary"
	"hash/fnv"
)

// Heartbeat messages: an update of one instance whose tokens did not change
// since this member last gossiped it carries, instead of the tokens, their
// digest. It is about 50 bytes where the full update with 128 tokens is
// about 600, and its size does not grow with the tokens, so that heartbeats
// never come near memberlist's packet limit whatever the token count.
//
//	byte    version (heartbeatVersion)
//	string  ID, string Addr, string Zone (uvarint length + bytes)
//	byte    State
//	varint  HeartbeatUnixMillis, varint RegisteredAt
//	8 bytes tokensDigest of the tokens, little endian
//
// A receiver applies it only when the description it holds for the
// instance has tokens of that digest: the message then stands for exactly
// the sender's description, and merging it is merging that description (the
// CRDT is unchanged). A receiver that holds other tokens (it missed the full
// update) drops it, counted as argus_ring_gossip_dropped_total{reason=
// "unknown_tokens"}, and gets the tokens at the next push/pull.
const heartbeatVersion = 2

// tokensDigest is FNV-1a over the tokens' little-endian bytes.
func tokensDigest(tokens []uint32) uint64 {
	h := fnv.New64a()
	var b [4]byte
	for _, t := range tokens {
		binary.LittleEndian.PutUint32(b[:], t)
		_, _ = h.Write(b[:])
	}
	return h.Sum64()
}

// encodeHeartbeat appends the heartbeat message of instance id to buf.
func encodeHeartbeat(buf []byte, id string, in InstanceDesc) []byte {
	buf = append(buf, heartbeatVersion)
	buf = appendString(buf, id)
	buf = appendString(buf, in.Addr)
	buf = appendString(buf, in.Zone)
	buf = append(buf, byte(in.State))
	buf = binary.AppendVarint(buf, in.HeartbeatUnixMillis)
	buf = binary.AppendVarint(buf, in.RegisteredAt)
	return binary.LittleEndian.AppendUint64(buf, tokensDigest(in.Tokens))
}

// heartbeatMsg is a decoded heartbeat message.
type heartbeatMsg struct {
	id     string
	in     InstanceDesc // Tokens nil
	digest uint64
}

// decodeHeartbeat decodes what encodeHeartbeat wrote.
func decodeHeartbeat(b []byte) (heartbeatMsg, error) {
	r := decoder{b: b}
	if v := r.byte(); v != heartbeatVersion {
		return heartbeatMsg{}, corruptf("unknown version %d", v)
	}
	m := heartbeatMsg{id: r.string()}
	m.in = InstanceDesc{Addr: r.string(), Zone: r.string(), State: State(r.byte())}
	m.in.HeartbeatUnixMillis = r.varint()
	m.in.RegisteredAt = r.varint()
	if r.err != nil {
		return heartbeatMsg{}, r.err
	}
	if len(r.b) != 8 {
		return heartbeatMsg{}, corruptf("heartbeat of %q: %d bytes of digest", m.id, len(r.b))
	}
	if m.in.State < StateJoining || m.in.State > StateLeft {
		return heartbeatMsg{}, corruptf("instance %q: unknown state %d", m.id, m.in.State)
	}
	m.digest = binary.LittleEndian.Uint64(r.b)
	return m, nil
}

// resolve returns the full description the heartbeat stands for, from the
// tokens of held, the description the receiver holds; false when held's
// tokens are not those of the heartbeat.
func (m heartbeatMsg) resolve(held InstanceDesc, ok bool) (InstanceDesc, bool) {
	if !ok || tokensDigest(held.Tokens) != m.digest {
		return InstanceDesc{}, false
	}
	in := m.in
	in.Tokens = held.Tokens
	return in, true
}

// maxFullUpdateSize is the largest the full gossiped update of one instance
// can be: the encoding of a Desc of that instance alone with every token
// delta at its widest (5 bytes) and both times at their widest (10 bytes).
func maxFullUpdateSize(id, addr, zone string, tokens int) int {
	uv := func(n int) int { return len(binary.AppendUvarint(nil, uint64(n))) }
	str := func(s string) int { return uv(len(s)) + len(s) }
	return 1 + uv(1) + str(id) + str(addr) + str(zone) + 1 + 10 + 10 + uv(tokens) + 5*tokens
}
