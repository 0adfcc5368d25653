package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/argus-tsdb/argus/distributor"
	"github.com/argus-tsdb/argus/ingester"
	"github.com/argus-tsdb/argus/internal/auth"
	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/querier"
	"github.com/argus-tsdb/argus/ring"
	"github.com/argus-tsdb/argus/ruler"
	"github.com/argus-tsdb/argus/scraper"
)

// configFile is the layout of -config.file: pointers into one Config,
// arranged as Mimir arranges its YAML (the log level under server, the ring
// and its store under ingester). Each package's Config is inlined as it is,
// with its own yaml tags, so that a field added there is a field of the
// file at once. A top-level field added to Config needs a line here;
// TestConfigFileCoversConfig fails until it has one.
type configFile struct {
	Target              *string                `yaml:"target"`
	MultitenancyEnabled *bool                  `yaml:"multitenancy_enabled"`
	Server              serverFile             `yaml:"server"`
	IngesterClient      ingesterClientFile     `yaml:"ingester_client"`
	Ingester            ingesterFile           `yaml:"ingester"`
	Memberlist          *ring.MemberlistConfig `yaml:"memberlist"`
	Distributor         *distributor.Config    `yaml:"distributor"`
	Querier             *querier.Config        `yaml:"querier"`
	Admin               *querier.AdminConfig   `yaml:"api"`
	Limits              *limits.Limits         `yaml:"limits"`
	Auth                *auth.Config           `yaml:"auth"`
	RuntimeConfig       *limits.Config         `yaml:"runtime_config"`
	Scraper             *scraper.Config        `yaml:"scraper"`
	Ruler               *ruler.Config          `yaml:"ruler"`
}

type serverFile struct {
	Server *ServerConfig `yaml:",inline"`
	Log    *LogConfig    `yaml:",inline"`
}

type ingesterClientFile struct {
	Addresses *string `yaml:"addresses"`
}

type ingesterFile struct {
	Ingester *ingester.Config `yaml:",inline"`
	Ring     ringFile         `yaml:"ring"`
}

type ringFile struct {
	Ring    *ring.Config `yaml:",inline"`
	KVStore kvStoreFile  `yaml:"kvstore"`
}

type kvStoreFile struct {
	Store *string `yaml:"store"`
}

// fileView returns the file layout of c; decoding into it sets c's fields.
func fileView(c *Config) *configFile {
	return &configFile{
		Target:              &c.Target,
		MultitenancyEnabled: &c.MultitenancyEnabled,
		Server:              serverFile{Server: &c.Server, Log: &c.Log},
		IngesterClient:      ingesterClientFile{Addresses: &c.IngesterAddresses},
		Ingester:            ingesterFile{Ingester: &c.Ingester, Ring: ringFile{Ring: &c.Ring, KVStore: kvStoreFile{Store: &c.RingStore}}},
		Memberlist:          &c.Memberlist,
		Distributor:         &c.Distributor,
		Querier:             &c.Querier,
		Admin:               &c.Admin,
		Limits:              &c.Limits,
		Auth:                &c.Auth,
		RuntimeConfig:       &c.RuntimeConfig,
		Scraper:             &c.Scraper,
		Ruler:               &c.Ruler,
	}
}

// commaListFields are the string fields holding comma-separated lists (as
// their flags do); the file may write them as YAML lists, as Mimir's
// join_members is.
var commaListFields = [][]string{
	{"target"},
	{"memberlist", "join_members"},
	{"ingester_client", "addresses"},
	{"scraper", "monitors", "namespaces"},
}

// loadConfigFile reads path into c, over the flag defaults c already holds,
// and returns the file's root node. Fields the file does not name keep their
// values. An unknown field, or a value of the wrong type, is an error naming
// the line.
func loadConfigFile(c *Config, path string, expandEnv bool) (*yaml.Node, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if expandEnv {
		data = []byte(os.Expand(string(data), envWithDefault))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, cleanYAMLError(err))
	}
	if len(doc.Content) == 0 {
		return nil, nil // An empty file sets nothing.
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: line %d: the configuration must be a mapping of fields", path, root.Line)
	}
	// Node.Decode has no KnownFields: unknown fields are found by walking
	// the nodes along the layout's type, which keeps the file's lines.
	if err := checkKnownFields(root, reflect.TypeOf(configFile{}), ""); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, p := range commaListFields {
		joinListAt(root, p)
	}
	if err := root.Decode(fileView(c)); err != nil {
		return nil, fmt.Errorf("%s: %w", path, cleanYAMLError(err))
	}
	return root, nil
}

// checkKnownFields reports the first key of the mapping n, at any depth,
// that names no field of the struct type t.
func checkKnownFields(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind != yaml.MappingNode || t.Kind() != reflect.Struct {
		return nil
	}
	fields := map[string]reflect.Type{}
	yamlFields(t, fields)
	for j := 0; j+1 < len(n.Content); j += 2 {
		key := n.Content[j]
		ft, ok := fields[key.Value]
		if !ok {
			return fmt.Errorf("line %d: field %s%s is not a configuration field (see docs/configuration.md)", key.Line, path, key.Value)
		}
		if err := checkKnownFields(n.Content[j+1], ft, path+key.Value+"."); err != nil {
			return err
		}
	}
	return nil
}

// yamlFields collects the yaml keys of struct type t, inlined ones included.
func yamlFields(t reflect.Type, out map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			yamlFields(ft, out)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
}

// envWithDefault expands ${VAR} and ${VAR:default} (the default when VAR is
// unset or empty), as Mimir's -config.expand-env does.
func envWithDefault(name string) string {
	name, def, hasDef := strings.Cut(name, ":")
	if v := os.Getenv(name); v != "" || !hasDef {
		return v
	}
	return def
}

// joinListAt rewrites the sequence at path under a mapping into one
// comma-separated scalar, in place.
func joinListAt(n *yaml.Node, path []string) {
	for i, key := range path {
		if n.Kind != yaml.MappingNode {
			return
		}
		var next *yaml.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == key {
				next = n.Content[j+1]
			}
		}
		if next == nil {
			return
		}
		if i < len(path)-1 {
			n = next
			continue
		}
		if next.Kind != yaml.SequenceNode {
			return
		}
		parts := make([]string, 0, len(next.Content))
		for _, item := range next.Content {
			parts = append(parts, item.Value)
		}
		next.Kind, next.Tag, next.Value, next.Content, next.Style = yaml.ScalarNode, "!!str", strings.Join(parts, ","), nil, 0
	}
}

// typeInMessage matches the Go type names yaml.v3 puts in its errors, which
// mean nothing to a user.
var typeInMessage = regexp.MustCompile(` in type [\w.*]+`)

// cleanYAMLError keeps yaml.v3's "line N: ..." and drops Go type names.
func cleanYAMLError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
	msg = strings.ReplaceAll(msg, "\n  ", "; ")
	return errors.New(typeInMessage.ReplaceAllString(msg, ""))
}

// fileKeys returns the dotted paths of the leaves set in the file.
func fileKeys(n *yaml.Node, prefix string, out map[string]bool) {
	if n == nil {
		return
	}
	if n.Kind != yaml.MappingNode {
		out[prefix] = true
		return
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		key := n.Content[j].Value
		if prefix != "" {
			key = prefix + "." + key
		}
		fileKeys(n.Content[j+1], key, out)
	}
}

// registerConfigFileFlags registers the flags that point at the file.
func (c *Config) registerConfigFileFlags(f *flag.FlagSet) {
	f.StringVar(&c.ConfigFile, "config.file", "", "YAML file of the configuration, with the fields of docs/configuration.md; flags given on the command line override it. Per-tenant limits overrides stay in -runtime-config.file.")
	f.BoolVar(&c.ConfigExpandEnv, "config.expand-env", false, "Replace ${VAR} and ${VAR:default} in -config.file with the environment's values before reading it.")
}
