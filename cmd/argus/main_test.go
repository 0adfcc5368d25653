package main

import (
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/ingester"
	"github.com/argus-tsdb/argus/ring"
)

func TestFlagReference(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "flags.md")
	want := flagReference()
	if os.Getenv("ARGUS_UPDATE_DOCS") == "1" {
		require.NoError(t, os.WriteFile(path, []byte(want), 0o644))
	}
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, want, string(got), "docs/flags.md is stale: run ARGUS_UPDATE_DOCS=1 go test ./cmd/argus -run TestFlagReference")
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "defaults", args: nil},
		{name: "unknown target", args: []string{"-target=compactor"}, wantErr: `unknown target "compactor"`},
		{name: "static querier without ingester addresses", args: []string{"-target=querier", "-ingester.ring.store=static"}, wantErr: "-ingester.client.addresses is required"},
		{name: "querier on the gossiped ring", args: []string{"-target=querier", "-memberlist.join=127.0.0.1:7946"}},
		{name: "unknown ring store", args: []string{"-ingester.ring.store=consul"}, wantErr: `"consul" is neither static nor memberlist`},
		{name: "bad ring config", args: []string{"-target=ingester", "-ingester.ring.replication-factor=0"}, wantErr: "replication-factor"},
		{name: "split roles with addresses", args: []string{"-target=distributor,querier", "-ingester.client.addresses=127.0.0.1:9095"}},
		{name: "bad log level", args: []string{"-log.level=loud"}, wantErr: "-log.level"},
		{name: "zone awareness on a distributor needs no zone", args: []string{"-target=distributor", "-memberlist.join=127.0.0.1:7946", "-ingester.ring.zone-awareness-enabled=true"}},
		{name: "zone awareness on an ingester needs its zone", args: []string{"-target=ingester", "-ingester.ring.zone-awareness-enabled=true"}, wantErr: "-ingester.ring.instance-availability-zone"},
		{name: "bad log format", args: []string{"-log.format=xml"}, wantErr: "-log.format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cfg Config
			fs := flag.NewFlagSet("argus", flag.ContinueOnError)
			cfg.RegisterFlags(fs)
			require.NoError(t, fs.Parse(c.args))
			err := cfg.Validate()
			if c.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, c.wantErr)
		})
	}
}

func TestRingStoreDefaults(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{Target: "all"}, ringStoreStatic},
		{Config{Target: "all", Memberlist: ring.MemberlistConfig{Join: "a:7946"}}, ringStoreMemberlist},
		{Config{Target: "ingester"}, ringStoreMemberlist},
		{Config{Target: "ingester", RingStore: ringStoreStatic}, ringStoreStatic},
	}
	for _, c := range cases {
		require.Equal(t, c.want, c.cfg.ringStore(), "%+v", c.cfg)
	}
}

func TestDerivedDefaults(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("argus", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{"-target=ingester", "-server.grpc-listen-port=9123", "-storage.path=/d"}))
	cfg.applyDerivedDefaults()
	require.Equal(t, 9123, cfg.Ring.InstancePort)
	require.Equal(t, "/d/tokens", cfg.Ring.TokensFilePath)

	cfg.explicit = map[string]bool{"ingester.ring.instance-port": true}
	cfg.Ring.InstancePort = 7000
	cfg.applyDerivedDefaults()
	require.Equal(t, 7000, cfg.Ring.InstancePort)
}

func TestRoles(t *testing.T) {
	cfg := Config{Target: "all"}
	require.Equal(t, map[string]bool{roleDistributor: true, roleIngester: true, roleQuerier: true, roleRuler: true}, cfg.Roles())
	cfg.Target = "distributor, querier"
	require.Equal(t, map[string]bool{roleDistributor: true, roleQuerier: true}, cfg.Roles())
}

// TestLocalInstanceID checks that the querier of an all-in-one finds its
// own ingester in the read set of its static ring: the instance it reads
// in-process.
func TestLocalInstanceID(t *testing.T) {
	for _, host := range []string{"", "0.0.0.0", "10.1.2.3"} {
		var cfg Config
		fs := flag.NewFlagSet("argus", flag.ContinueOnError)
		cfg.RegisterFlags(fs)
		require.NoError(t, fs.Parse([]string{"-server.grpc-listen-address=" + host, "-server.grpc-listen-port=9123"}))
		a := &app{cfg: cfg, ingester: &ingester.Ingester{}}
		r, err := a.setupRing(http.NewServeMux())
		require.NoError(t, err)
		instances, _, err := r.ReadSet()
		require.NoError(t, err)
		require.Len(t, instances, 1)
		require.Equal(t, instances[0].ID, a.localInstanceID(), "host %q", host)
	}
	cfg := Config{Target: "all", Memberlist: ring.MemberlistConfig{Join: "a:7946"}}
	cfg.Ring.InstanceID = "ingester-7"
	require.Equal(t, "ingester-7", (&app{cfg: cfg}).localInstanceID(), "the gossiped ring lists the ingester by its ID")
}
