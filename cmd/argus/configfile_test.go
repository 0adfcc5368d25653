package main

import (
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// flagsOutsideFile are the flags that are about the file or the command
// line itself, not the configuration.
var flagsOutsideFile = map[string]bool{"version": true, "config.file": true, "config.expand-env": true}

// testValue returns a value other than the flag's default, as the command
// line writes it and as the file does.
func testValue(t *testing.T, f *flag.Flag, typ reflect.Type) (string, any) {
	t.Helper()
	switch {
	case typ == reflect.TypeOf(time.Duration(0)):
		d, err := time.ParseDuration(f.DefValue)
		require.NoError(t, err, f.Name)
		v := (d + 3*time.Second).String()
		return v, v
	case typ.Kind() == reflect.Bool:
		v := f.DefValue != "true"
		return strconv.FormatBool(v), v
	case typ.Kind() == reflect.Int || typ.Kind() == reflect.Int64:
		d, err := strconv.ParseInt(f.DefValue, 10, 64)
		require.NoError(t, err, f.Name)
		return strconv.FormatInt(d+7, 10), d + 7
	case typ.Kind() == reflect.Float64:
		d, err := strconv.ParseFloat(f.DefValue, 64)
		require.NoError(t, err, f.Name)
		return strconv.FormatFloat(d+1.5, 'g', -1, 64), d + 1.5
	case typ.Kind() == reflect.String:
		return "test-" + f.Name, "test-" + f.Name
	case typ.Kind() == reflect.Slice && typ.Elem().Kind() == reflect.String:
		return "a,b", []string{"a", "b"}
	case typ.Kind() == reflect.Map && typ.Elem().Kind() == reflect.String:
		return "a=b", map[string]string{"a": "b"}
	}
	t.Fatalf("flag -%s: no test value for type %s", f.Name, typ)
	return "", nil
}

// setPath sets the dotted path in a nested map.
func setPath(m map[string]any, path string, v any) {
	keys := strings.Split(path, ".")
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = v
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "argus.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

func mustParse(t *testing.T, args ...string) Config {
	t.Helper()
	cfg, code := parseConfig(args)
	require.Equal(t, -1, code, "parseConfig(%q)", args)
	cfg.ConfigFile, cfg.ConfigExpandEnv, cfg.explicit = "", false, nil
	return cfg
}

// TestConfigFileEqualsFlags sets every registered flag, one at a time,
// through the file and on the command line, and wants the same Config. The
// list of flags is the registrations, so a new flag is tested at once, and
// a flag without a field in the file fails here.
func TestConfigFileEqualsFlags(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("argus", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	paths := flagPaths(&cfg, fs)
	types := map[string]reflect.Type{}
	for _, l := range configLeaves(&cfg) {
		types[l.Path] = l.Type
	}
	defaults := mustParse(t)
	seen := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		if flagsOutsideFile[f.Name] {
			return
		}
		path, ok := paths[f.Name]
		if !ok {
			t.Errorf("flag -%s has no field in the configuration file: add its struct to configFile", f.Name)
			return
		}
		if other, dup := seen[path]; dup {
			t.Errorf("flags -%s and -%s share the field %s", f.Name, other, path)
		}
		seen[path] = f.Name
		arg, value := testValue(t, f, types[path])
		doc := map[string]any{}
		setPath(doc, path, value)
		text, err := yaml.Marshal(doc)
		require.NoError(t, err)
		fromFlag := mustParse(t, "-"+f.Name+"="+arg)
		fromFile := mustParse(t, "-config.file="+writeConfig(t, string(text)))
		require.Equal(t, fromFlag, fromFile, "-%s=%s against the file:\n%s", f.Name, arg, text)
		require.NotEqual(t, defaults, fromFlag, "-%s=%s changed nothing", f.Name, arg)
	})
	require.Greater(t, len(seen), 50)
}

func TestConfigFileFlagsOverride(t *testing.T) {
	path := writeConfig(t, "server:\n  http_listen_port: 9000\n  grpc_listen_port: 9001\n  log_level: debug\n")
	cfg := mustParse(t, "-config.file="+path, "-server.http-listen-port=9100")
	require.Equal(t, 9100, cfg.Server.HTTPListenPort, "the command line wins")
	require.Equal(t, 9001, cfg.Server.GRPCListenPort)
	require.Equal(t, 9001, cfg.Ring.InstancePort, "the instance port follows the gRPC port set in the file")
	require.Equal(t, "debug", cfg.Log.Level)
}

func TestConfigFileMimirFields(t *testing.T) {
	path := writeConfig(t, `
target: distributor,querier
memberlist:
  join_members: [a:7946, b:7946]
ingester:
  ring:
    replication_factor: 2
    kvstore:
      store: memberlist
ingester_client:
  addresses:
    - 10.0.0.1:9095
limits:
  ingestion_rate: 5000
  promote_otel_resource_attributes: [service.region]
`)
	cfg := mustParse(t, "-config.file="+path)
	require.Equal(t, "distributor,querier", cfg.Target)
	require.Equal(t, "a:7946,b:7946", cfg.Memberlist.Join)
	require.Equal(t, 2, cfg.Ring.ReplicationFactor)
	require.Equal(t, "memberlist", cfg.RingStore)
	require.Equal(t, "10.0.0.1:9095", cfg.IngesterAddresses)
	require.Equal(t, 5000.0, cfg.Limits.IngestionRate)
	require.Equal(t, []string{"service.region"}, cfg.Limits.PromoteOTelResourceAttributes)
}

func TestConfigFileErrors(t *testing.T) {
	cases := []struct {
		name, text, want string
	}{
		{"unknown field", "server:\n  http_listen_port: 1\n  http_listen_prot: 2\n", "line 3: field server.http_listen_prot is not a configuration field"},
		{"unknown top-level field", "target: all\n\nblocks_storage: {}\n", "line 3: field blocks_storage is not"},
		{"wrong type", "limits:\n  ingestion_rate: lots\n", "line 2: cannot unmarshal !!str `lots` into float64"},
		{"bad duration", "ingester:\n  flush_period: 10 seconds\n", "line 2:"},
		{"not a mapping", "- a\n- b\n", "line 1: the configuration must be a mapping"},
		{"syntax", "server:\n  http_listen_port: [\n", "line 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cfg Config
			fs := flag.NewFlagSet("argus", flag.ContinueOnError)
			cfg.RegisterFlags(fs)
			path := writeConfig(t, c.text)
			_, err := loadConfigFile(&cfg, path, false)
			require.ErrorContains(t, err, c.want)
			require.ErrorContains(t, err, path)
			require.NotContains(t, err.Error(), "main.", "no Go type names")
		})
	}
	_, code := parseConfig([]string{"-config.file=" + writeConfig(t, "nope: 1\n")})
	require.Equal(t, 2, code)
}

func TestConfigFileExpandEnv(t *testing.T) {
	t.Setenv("ARGUS_TEST_PORT", "9123")
	path := writeConfig(t, "server:\n  http_listen_port: ${ARGUS_TEST_PORT}\n  grpc_listen_port: ${ARGUS_TEST_UNSET:9555}\n")
	cfg := mustParse(t, "-config.file="+path, "-config.expand-env")
	require.Equal(t, 9123, cfg.Server.HTTPListenPort)
	require.Equal(t, 9555, cfg.Server.GRPCListenPort)
	_, code := parseConfig([]string{"-config.file=" + path})
	require.Equal(t, 2, code, "without -config.expand-env the text ${...} is no port")
}

func TestConfigFileEmpty(t *testing.T) {
	require.Equal(t, mustParse(t), mustParse(t, "-config.file="+writeConfig(t, "")))
	_, code := parseConfig([]string{"-config.file=" + filepath.Join(t.TempDir(), "missing.yaml")})
	require.Equal(t, 2, code)
}

func TestConfigFileNamesEveryFlag(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("argus", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	paths := flagPaths(&cfg, fs)
	for _, l := range configLeaves(&cfg) {
		found := false
		for _, p := range paths {
			found = found || p == l.Path
		}
		require.True(t, found, fmt.Sprintf("field %s has no flag", l.Path))
	}
}

func TestConfigReference(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "configuration.md")
	want := configReference()
	if os.Getenv("ARGUS_UPDATE_DOCS") == "1" {
		require.NoError(t, os.WriteFile(path, []byte(want), 0o644))
	}
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, want, string(got), "docs/configuration.md is stale: run ARGUS_UPDATE_DOCS=1 go test ./cmd/argus -run TestConfigReference")
}

func TestConfigHandler(t *testing.T) {
	cfg := mustParse(t, "-server.http-listen-port=9100", "-scraper.remote-write-url=https://user:hunter2@example.com/api/v1/push")
	h := configHandler(cfg)
	get := func(query string) (int, string) {
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequest(http.MethodGet, "/config"+query, nil))
		return rec.Code, rec.Body.String()
	}
	code, body := get("")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "http_listen_port: 9100\n")
	require.Contains(t, body, "grpc_listen_port: 9095\n")
	require.Contains(t, body, "remote_write_url: https://user:xxxxx@example.com/api/v1/push")
	require.NotContains(t, body, "hunter2")
	var back Config
	back.RegisterFlags(flag.NewFlagSet("x", flag.ContinueOnError))
	_, err := loadConfigFile(&back, writeConfig(t, body), false)
	require.NoError(t, err, "/config is a valid -config.file")
	require.Equal(t, 9100, back.Server.HTTPListenPort)

	code, body = get("?mode=diff")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "http_listen_port: 9100\n")
	require.NotContains(t, body, "grpc_listen_port")
	require.NotContains(t, body, "hunter2")

	code, body = get("?mode=all")
	require.Equal(t, http.StatusBadRequest, code)
	require.True(t, strings.HasPrefix(body, "err-argus-invalid-parameter: "), body)
}

// TestAllInOneLimits checks that -target=all lifts the per-tenant ingestion
// limits unless a flag or the file sets them, and that the cluster roles
// keep Mimir's defaults.
func TestAllInOneLimits(t *testing.T) {
	all := mustParse(t)
	require.Zero(t, all.Limits.IngestionRate)
	require.Zero(t, all.Limits.MaxGlobalSeriesPerUser)
	require.Zero(t, all.Limits.MaxGlobalSeriesPerMetric)

	cluster := mustParse(t, "-target=distributor", "-memberlist.join=a:7946")
	require.Equal(t, 10000.0, cluster.Limits.IngestionRate)
	require.Equal(t, 150000, cluster.Limits.MaxGlobalSeriesPerUser)
	require.Equal(t, 20000, cluster.Limits.MaxGlobalSeriesPerMetric)

	flagged := mustParse(t, "-distributor.ingestion-rate-limit=5000")
	require.Equal(t, 5000.0, flagged.Limits.IngestionRate)
	require.Zero(t, flagged.Limits.MaxGlobalSeriesPerUser)

	filed := mustParse(t, "-config.file="+writeConfig(t, "limits:\n  max_global_series_per_user: 300\n"))
	require.Equal(t, 300, filed.Limits.MaxGlobalSeriesPerUser)
	require.Zero(t, filed.Limits.IngestionRate)
}

// TestProcessFlags checks that status/flags lists every flag of the process,
// of every role, with the value in force: from the file, from the command
// line, and the all-in-one's lifted limits; URL passwords masked.
func TestProcessFlags(t *testing.T) {
	file := writeConfig(t, "ingester:\n  ring:\n    replication_factor: 1\n")
	cfg, code := parseConfig([]string{"-config.file=" + file, "-server.http-listen-port=9100",
		"-scraper.remote-write-url=https://user:hunter2@example.com/api/v1/push"})
	require.Equal(t, -1, code)
	got := processFlags(cfg)

	var names []string
	var defaults Config
	fs := flag.NewFlagSet("argus", flag.ContinueOnError)
	defaults.RegisterFlags(fs)
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	gotNames := make([]string, 0, len(got))
	for n := range got {
		gotNames = append(gotNames, n)
	}
	require.ElementsMatch(t, names, gotNames, "every flag of the process, no other")

	require.Equal(t, file, got["config.file"])
	require.Equal(t, "9100", got["server.http-listen-port"])
	require.Equal(t, "1", got["ingester.ring.replication-factor"])
	require.Equal(t, "all", got["target"])
	require.Equal(t, "0", got["distributor.ingestion-rate-limit"], "the all-in-one's lifted limit is the one in force")
	require.Equal(t, "https://user:xxxxx@example.com/api/v1/push", got["scraper.remote-write-url"])
	require.Equal(t, fs.Lookup("querier.max-concurrent").DefValue, got["querier.max-concurrent"])
}
