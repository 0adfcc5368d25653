package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
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
		{name: "querier without ingester addresses", args: []string{"-target=querier"}, wantErr: "-ingester.client.addresses is required"},
		{name: "split roles with addresses", args: []string{"-target=distributor,querier", "-ingester.client.addresses=127.0.0.1:9095"}},
		{name: "bad log level", args: []string{"-log.level=loud"}, wantErr: "-log.level"},
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

func TestRoles(t *testing.T) {
	cfg := Config{Target: "all"}
	require.Equal(t, map[string]bool{roleDistributor: true, roleIngester: true, roleQuerier: true}, cfg.Roles())
	cfg.Target = "distributor, querier"
	require.Equal(t, map[string]bool{roleDistributor: true, roleQuerier: true}, cfg.Roles())
}
