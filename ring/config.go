package ring

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is the ring configuration of an ingester (its Lifecycler) and of
// every process that reads the ring (the view options).
type Config struct {
	NumTokens                  int           `yaml:"num_tokens"`
	ReplicationFactor          int           `yaml:"replication_factor"`
	ZoneAwarenessEnabled       bool          `yaml:"zone_awareness_enabled"`
	InstanceZone               string        `yaml:"instance_availability_zone"`
	InstanceID                 string        `yaml:"instance_id"`
	InstanceAddr               string        `yaml:"instance_addr"`
	InstancePort               int           `yaml:"instance_port"`
	HeartbeatPeriod            time.Duration `yaml:"heartbeat_period"`
	HeartbeatTimeout           time.Duration `yaml:"heartbeat_timeout"`
	AutoForgetUnhealthyPeriods int           `yaml:"auto_forget_unhealthy_periods"`
	JoinAfter                  time.Duration `yaml:"join_after" category:"advanced"`
	TokensFilePath             string        `yaml:"tokens_file_path"`
	LeavePropagationDelay      time.Duration `yaml:"leave_propagation_delay" category:"advanced"`
}

// RegisterFlags registers the flags of c under -ingester.ring.
func (c *Config) RegisterFlags(f *flag.FlagSet) { c.RegisterFlagsWithPrefix("ingester.", f) }

// RegisterFlagsWithPrefix registers the flags of c under -<prefix>ring.
func (c *Config) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	hostname, _ := os.Hostname()
	p := prefix + "ring."
	f.IntVar(&c.NumTokens, p+"num-tokens", 128, "Number of tokens each ingester owns on the ring.")
	f.IntVar(&c.ReplicationFactor, p+"replication-factor", 3, "Number of ingesters each series is written to.")
	f.BoolVar(&c.ZoneAwarenessEnabled, p+"zone-awareness-enabled", false, "Place the replicas of a series in distinct availability zones.")
	f.StringVar(&c.InstanceZone, p+"instance-availability-zone", "", "Availability zone of this ingester (with zone awareness).")
	f.StringVar(&c.InstanceID, p+"instance-id", hostname, "ID of this ingester in the ring; unique in the cluster.")
	f.StringVar(&c.InstanceAddr, p+"instance-addr", "", "Address other processes reach this ingester's gRPC server at; empty picks the first private IPv4 of the host.")
	f.IntVar(&c.InstancePort, p+"instance-port", 0, "Port other processes reach this ingester's gRPC server at; 0 is the process's -server.grpc-listen-port.")
	f.DurationVar(&c.HeartbeatPeriod, p+"heartbeat-period", 5*time.Second, "How often an ingester refreshes its ring entry.")
	f.DurationVar(&c.HeartbeatTimeout, p+"heartbeat-timeout", time.Minute, "Heartbeat age after which an ingester is UNHEALTHY; 0 disables the check.")
	f.IntVar(&c.AutoForgetUnhealthyPeriods, p+"auto-forget-unhealthy-periods", 10, "Forget an ingester whose heartbeat is older than this many heartbeat timeouts, unless that leaves fewer than a quorum of members; 0 disables.")
	f.DurationVar(&c.JoinAfter, p+"join-after", 0, "Minimum time an ingester stays JOINING before it may turn ACTIVE.")
	f.DurationVar(&c.LeavePropagationDelay, p+"leave-propagation-delay", time.Second, "How long a stopping ingester keeps taking pushes after turning LEAVING, for the state to gossip to the distributors.")
	f.StringVar(&c.TokensFilePath, p+"tokens-file-path", "", "File the ingester keeps its tokens in across restarts, so that a restarted ingester owns the same series; empty is <-storage.path>/tokens.")
}

// Validate reports an invalid configuration.
func (c *Config) Validate() error {
	switch {
	case c.NumTokens < 1:
		return errors.New("ring: num-tokens must be at least 1")
	case c.ReplicationFactor < 1:
		return errors.New("ring: replication-factor must be at least 1")
	case c.InstanceID == "":
		return errors.New("ring: instance-id must not be empty")
	case c.HeartbeatPeriod <= 0:
		return errors.New("ring: heartbeat-period must be positive")
	case c.HeartbeatTimeout > 0 && c.HeartbeatTimeout < c.HeartbeatPeriod:
		return errors.New("ring: heartbeat-timeout must not be shorter than heartbeat-period")
	case c.AutoForgetUnhealthyPeriods < 0:
		return errors.New("ring: auto-forget-unhealthy-periods must not be negative")
	case strings.ContainsAny(c.InstanceID, ",/"):
		return fmt.Errorf("ring: instance-id %q must not contain ',' or '/'", c.InstanceID)
	}
	return c.validateGossipSize()
}

// ValidateInstance checks what an ingester registering in the ring needs on
// top of Validate: with zone awareness, its zone. Processes that only read
// the ring (distributors, queriers) have no zone, as in Mimir.
func (c *Config) ValidateInstance() error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.ZoneAwarenessEnabled && c.InstanceZone == "" {
		return errors.New("ring: zone awareness (-ingester.ring.zone-awareness-enabled) needs the ingester's -ingester.ring.instance-availability-zone")
	}
	return nil
}

// validateGossipSize refuses a token count whose full update could exceed a
// gossip message: its heartbeats go as small heartbeat messages, but every
// change of its tokens or first gossip of it must fit.
func (c *Config) validateGossipSize() error {
	addr := c.InstanceAddr
	if addr == "" {
		addr = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" // the longest address it may pick
	}
	addr = net.JoinHostPort(addr, strconv.Itoa(c.InstancePort))
	if size := maxFullUpdateSize(c.InstanceID, addr, c.InstanceZone, c.NumTokens); size > maxBroadcastSize {
		most := c.NumTokens - (size-maxBroadcastSize+4)/5
		return fmt.Errorf("ring: num-tokens %d could not be gossiped: the ring entry of this instance may take %d bytes, over the %d bytes of a gossip message; use at most %d tokens",
			c.NumTokens, size, maxBroadcastSize, max(most, 0))
	}
	return nil
}

// Options returns the view options of c, for NewRing and NewKV.
func (c *Config) Options() Options {
	return Options{ReplicationFactor: c.ReplicationFactor, ZoneAwareness: c.ZoneAwarenessEnabled, HeartbeatTimeout: c.HeartbeatTimeout}
}

// advertisedAddr returns host:port of the instance's gRPC server.
func (c *Config) advertisedAddr() string {
	host := c.InstanceAddr
	if host == "" {
		host = firstPrivateIPv4()
	}
	return net.JoinHostPort(host, strconv.Itoa(c.InstancePort))
}

// firstPrivateIPv4 returns the first private IPv4 address of the host's
// interfaces, or 127.0.0.1.
func firstPrivateIPv4() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "127.0.0.1"
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsPrivate() {
			return ipn.IP.String()
		}
	}
	return "127.0.0.1"
}

// MemberlistConfig configures the gossip of the ring state (KV).
type MemberlistConfig struct {
	NodeName         string        `yaml:"node_name"`
	Join             string        `yaml:"join_members"`
	BindAddr         string        `yaml:"bind_addr"`
	BindPort         int           `yaml:"bind_port"`
	AdvertiseAddr    string        `yaml:"advertise_addr"`
	AdvertisePort    int           `yaml:"advertise_port"`
	GossipInterval   time.Duration `yaml:"gossip_interval" category:"advanced"`
	GossipNodes      int           `yaml:"gossip_nodes" category:"advanced"`
	PushPullInterval time.Duration `yaml:"push_pull_interval" category:"advanced"`
	RetransmitMult   int           `yaml:"retransmit_factor" category:"advanced"`
	RejoinInterval   time.Duration `yaml:"rejoin_interval" category:"advanced"`
	LeftTombstoneTTL time.Duration `yaml:"left_tombstone_ttl" category:"advanced"`
}

// RegisterFlags registers the flags of c under -memberlist.
func (c *MemberlistConfig) RegisterFlags(f *flag.FlagSet) { c.RegisterFlagsWithPrefix("", f) }

// RegisterFlagsWithPrefix registers the flags of c under -<prefix>memberlist.
func (c *MemberlistConfig) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	p := prefix + "memberlist."
	f.StringVar(&c.NodeName, p+"nodename", "", "Name of this process in the gossip cluster; empty is the hostname plus a random suffix.")
	f.StringVar(&c.Join, p+"join", "", "Comma-separated host:port or DNS names of members to join; a missing port means the bind port. dns+NAME:PORT looks NAME up on every join and joins each of its addresses (a Kubernetes headless Service).")
	f.StringVar(&c.BindAddr, p+"bind-addr", "0.0.0.0", "IP address to listen on for gossip.")
	f.IntVar(&c.BindPort, p+"bind-port", 7946, "Port to listen on for gossip (TCP and UDP); 0 picks a free one.")
	f.StringVar(&c.AdvertiseAddr, p+"advertise-addr", "", "IP address to advertise to other members; empty derives it from bind-addr.")
	f.IntVar(&c.AdvertisePort, p+"advertise-port", 0, "Port to advertise to other members; 0 is the bound port.")
	f.DurationVar(&c.GossipInterval, p+"gossip-interval", 200*time.Millisecond, "How often to gossip queued ring updates to other members.")
	f.IntVar(&c.GossipNodes, p+"gossip-nodes", 3, "How many members each gossip round goes to.")
	f.DurationVar(&c.PushPullInterval, p+"pull-push-interval", 15*time.Second, "How often to exchange the full ring state with a random member.")
	f.IntVar(&c.RetransmitMult, p+"retransmit-factor", 4, "Multiplier of how many times an update is gossiped (times log(members+1)).")
	f.DurationVar(&c.RejoinInterval, p+"rejoin-interval", 10*time.Second, "How often to retry joining while no other member is known.")
	f.DurationVar(&c.LeftTombstoneTTL, p+"left-tombstone-ttl", time.Hour, "How long LEFT instances stay in the ring state to stop older gossip from resurrecting them.")
}

// Validate reports an invalid configuration.
func (c *MemberlistConfig) Validate() error {
	if c.BindPort < 0 || c.BindPort > 65535 || c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		return errors.New("memberlist: ports must be in [0, 65535]")
	}
	if c.GossipInterval <= 0 || c.PushPullInterval <= 0 || c.RejoinInterval <= 0 {
		return errors.New("memberlist: intervals must be positive")
	}
	if c.LeftTombstoneTTL < time.Minute {
		return fmt.Errorf("memberlist: left-tombstone-ttl %s is shorter than a minute", c.LeftTombstoneTTL)
	}
	for _, a := range c.joinAddrs() {
		if err := validateJoinAddr(a); err != nil {
			return err
		}
	}
	return nil
}

// joinAddrs splits the -memberlist.join list.
func (c *MemberlistConfig) joinAddrs() []string {
	var out []string
	for _, a := range strings.Split(c.Join, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
