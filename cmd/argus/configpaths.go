package main

import (
	"flag"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// configLeaf is one field of the configuration file.
type configLeaf struct {
	Path string       // dotted YAML path, e.g. server.http_listen_port
	Addr uintptr      // address of the field in the Config the view points into
	Type reflect.Type // the field's Go type
}

// configLeaves lists the fields of the file layout of c in file order.
func configLeaves(c *Config) []configLeaf {
	var out []configLeaf
	walkLeaves(reflect.ValueOf(fileView(c)).Elem(), "", &out)
	return out
}

func walkLeaves(v reflect.Value, prefix string, out *[]configLeaf) {
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		fv := v.Field(i)
		if strings.Contains(opts, "inline") {
			walkLeaves(fv, prefix, out)
			continue
		}
		path := prefix + name
		if fv.Kind() == reflect.Pointer {
			fv = fv.Elem()
		}
		if fv.Kind() == reflect.Struct {
			walkLeaves(fv, path+".", out)
			continue
		}
		*out = append(*out, configLeaf{Path: path, Addr: fv.Addr().Pointer(), Type: fv.Type()})
	}
}

// flagAddr is the address of the variable a flag sets: every flag of the
// process is registered with a pointer to a Config field.
func flagAddr(f *flag.Flag) uintptr {
	v := reflect.ValueOf(f.Value)
	if v.Kind() != reflect.Pointer {
		return 0
	}
	return v.Pointer()
}

// flagPaths maps each flag registered on fs (for c) to its file path.
func flagPaths(c *Config, fs *flag.FlagSet) map[string]string {
	byAddr := map[uintptr]string{}
	for _, l := range configLeaves(c) {
		byAddr[l.Addr] = l.Path
	}
	out := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		if p, ok := byAddr[flagAddr(f)]; ok {
			out[f.Name] = p
		}
	})
	return out
}

// flagsInFile returns the names of the flags whose fields the file sets,
// for the defaults that apply only when a flag was not given.
func flagsInFile(c *Config, fs *flag.FlagSet, root *yaml.Node) map[string]bool {
	set := map[string]bool{}
	fileKeys(root, "", set)
	out := map[string]bool{}
	for name, path := range flagPaths(c, fs) {
		if set[path] {
			out[name] = true
		}
	}
	return out
}
