package ruler

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/prometheus/model/rulefmt"
	"go.yaml.in/yaml/v3"
)

// namespaceExt is the extension of a namespace's file in the store.
const namespaceExt = ".yaml"

// Store holds every tenant's rule groups by namespace, in memory and on disk:
// one Prometheus rule file per tenant and namespace,
// dir/<tenant>/<namespace>.yaml, both names path-escaped. Every change is
// written (temporary file, fsync, rename, fsync of the directory) before it
// is acknowledged, so an answered POST survives a crash. It is safe for
// concurrent use; the slices it returns are copies.
type Store struct {
	dir string

	mu      sync.Mutex
	groups  map[string]map[string][]rulefmt.RuleGroup // tenant → namespace → groups, in file order; guarded by mu
	version uint64                                    // bumped on every change; guarded by mu
	// files is the fingerprint of the files last loaded or written (name,
	// size, modification time), to notice changes made by another ruler
	// sharing the directory; guarded by mu.
	files string
}

// OpenStore loads the store in dir, creating dir if needed. A file that
// does not parse fails the open: it was written by this store, so it is
// damaged, and evaluating a tenant without it would silently drop alerts.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("rule store: %w", err)
	}
	s := &Store{dir: dir}
	if _, err := s.Refresh(); err != nil {
		return nil, err
	}
	return s, nil
}

// Refresh reloads the store from its directory if the files changed since
// the last load or write (another ruler sharing -ruler.storage-path wrote
// them), and reports whether it did. A file that does not parse fails the
// refresh and leaves the store as it was.
func (s *Store) Refresh() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fp, err := fingerprint(s.dir)
	if err != nil {
		return false, fmt.Errorf("rule store: %w", err)
	}
	if s.groups != nil && fp == s.files {
		return false, nil
	}
	groups, err := load(s.dir)
	if err != nil {
		return false, err
	}
	s.groups, s.files = groups, fp
	s.version++
	return true, nil
}

// fingerprint lists the namespace files under dir with their sizes and
// modification times.
func fingerprint(dir string) (string, error) {
	var b strings.Builder
	tenants, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	for _, td := range tenants {
		if !td.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, td.Name()))
		if err != nil {
			return "", err
		}
		for _, f := range files {
			if !strings.HasSuffix(f.Name(), namespaceExt) {
				continue
			}
			info, err := f.Info()
			if err != nil {
				continue // removed meanwhile
			}
			fmt.Fprintf(&b, "%s/%s %d %d\n", td.Name(), f.Name(), info.Size(), info.ModTime().UnixNano())
		}
	}
	return b.String(), nil
}

// load reads every tenant's namespaces under dir.
func load(dir string) (map[string]map[string][]rulefmt.RuleGroup, error) {
	out := map[string]map[string][]rulefmt.RuleGroup{}
	tenants, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("rule store: %w", err)
	}
	for _, td := range tenants {
		if !td.IsDir() {
			continue
		}
		tenantID, err := url.PathUnescape(td.Name())
		if err != nil {
			continue
		}
		nss, err := readNamespaces(filepath.Join(dir, td.Name()))
		if err != nil {
			return nil, fmt.Errorf("rule store: tenant %q: %w", tenantID, err)
		}
		if len(nss) > 0 {
			out[tenantID] = nss
		}
	}
	return out, nil
}

// readNamespaces reads the namespace files of one tenant directory.
func readNamespaces(dir string) (map[string][]rulefmt.RuleGroup, error) {
	files, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string][]rulefmt.RuleGroup{}
	for _, f := range files {
		if f.IsDir() || !strings.HasSuffix(f.Name(), namespaceExt) {
			continue // temporary files of an interrupted write among them
		}
		ns, err := url.PathUnescape(strings.TrimSuffix(f.Name(), namespaceExt))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			return nil, err
		}
		groups, err := ParseNamespace(f.Name(), b)
		if err != nil {
			return nil, err
		}
		if len(groups) > 0 {
			out[ns] = groups
		}
	}
	return out, nil
}

// escape makes a tenant or namespace name a single safe path element.
func escape(name string) string {
	e := url.PathEscape(name)
	if strings.HasPrefix(e, ".") {
		e = "%2E" + e[1:] // never ".", "..", or a hidden file
	}
	return e
}

// Namespaces returns the tenant's namespaces and their groups (copies).
func (s *Store) Namespaces(tenantID string) map[string][]rulefmt.RuleGroup {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]rulefmt.RuleGroup, len(s.groups[tenantID]))
	for ns, gs := range s.groups[tenantID] {
		out[ns] = slices.Clone(gs)
	}
	return out
}

// Snapshot returns every tenant's namespaces and the store's version. The
// maps are fresh; the groups' contents are shared and must not be modified.
func (s *Store) Snapshot() (map[string]map[string][]rulefmt.RuleGroup, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[string][]rulefmt.RuleGroup, len(s.groups))
	for t, nss := range s.groups {
		out[t] = maps.Clone(nss)
	}
	return out, s.version
}

// Version returns the store's version, bumped by every change.
func (s *Store) Version() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// SetGroup stores g in the tenant's namespace: it replaces the group of the
// same name in place, or is appended.
func (s *Store) SetGroup(tenantID, ns string, g rulefmt.RuleGroup) error {
	return s.SetGroupLimited(tenantID, ns, g, 0)
}

// SetGroupLimited is SetGroup refusing, with ErrTooManyGroups, a new group
// when the tenant has maxGroups groups already (0: no limit). The count and
// the write are one step, so two concurrent POSTs cannot both pass.
func (s *Store) SetGroupLimited(tenantID, ns string, g rulefmt.RuleGroup, maxGroups int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	groups := slices.Clone(s.groups[tenantID][ns])
	i := slices.IndexFunc(groups, func(o rulefmt.RuleGroup) bool { return o.Name == g.Name })
	if i >= 0 {
		groups[i] = g
	} else {
		if n := s.countLocked(tenantID); maxGroups > 0 && n >= maxGroups {
			return fmt.Errorf("tenant %q has %d rule groups, its limit (-ruler.max-rule-groups-per-tenant=%d): %w", tenantID, n, maxGroups, ErrTooManyGroups)
		}
		groups = append(groups, g)
	}
	return s.writeLocked(tenantID, ns, groups)
}

// countLocked returns the number of the tenant's groups; s.mu is held.
func (s *Store) countLocked(tenantID string) int {
	n := 0
	for _, gs := range s.groups[tenantID] {
		n += len(gs)
	}
	return n
}

// SetNamespace replaces the tenant's namespace with groups (none deletes it).
func (s *Store) SetNamespace(tenantID, ns string, groups []rulefmt.RuleGroup) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeLocked(tenantID, ns, slices.Clone(groups))
}

// DeleteGroup removes a group; ErrNotFound if there is none.
func (s *Store) DeleteGroup(tenantID, ns, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	groups := s.groups[tenantID][ns]
	i := slices.IndexFunc(groups, func(o rulefmt.RuleGroup) bool { return o.Name == name })
	if i < 0 {
		return ErrNotFound
	}
	return s.writeLocked(tenantID, ns, slices.Delete(slices.Clone(groups), i, i+1))
}

// DeleteNamespace removes a namespace; ErrNotFound if there is none.
func (s *Store) DeleteNamespace(tenantID, ns string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.groups[tenantID][ns]; !ok {
		return ErrNotFound
	}
	return s.writeLocked(tenantID, ns, nil)
}

// writeLocked makes groups the namespace's content, on disk first. s.mu is
// held.
func (s *Store) writeLocked(tenantID, ns string, groups []rulefmt.RuleGroup) error {
	dir := filepath.Join(s.dir, escape(tenantID))
	path := filepath.Join(dir, escape(ns)+namespaceExt)
	if len(groups) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rule store: %w", err)
		}
		if err := syncDir(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rule store: %w", err)
		}
		delete(s.groups[tenantID], ns)
		if len(s.groups[tenantID]) == 0 {
			delete(s.groups, tenantID)
		}
		s.version++
		s.files, _ = fingerprint(s.dir) // an error makes the next Refresh reload
		return nil
	}
	b, err := yaml.Marshal(rulefmt.RuleGroups{Groups: groups})
	if err != nil {
		return fmt.Errorf("rule store: encode: %w", err)
	}
	if err := writeFileAtomic(dir, path, b); err != nil {
		return fmt.Errorf("rule store: %w", err)
	}
	if s.groups[tenantID] == nil {
		s.groups[tenantID] = map[string][]rulefmt.RuleGroup{}
	}
	s.groups[tenantID][ns] = groups
	s.version++
	s.files, _ = fingerprint(s.dir)
	return nil
}

// writeFileAtomic writes b to path through a synced temporary file renamed
// into place, then syncs dir so that the rename is durable.
func writeFileAtomic(dir, path string, b []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ImportDir loads every rule file of dir (<tenant>/<namespace>.yaml or
// .yml) into the store, each replacing its namespace. Every file is parsed
// before anything is stored, so a bad file changes nothing.
func (s *Store) ImportDir(dir string) (files int, err error) {
	type nsFile struct {
		tenant, ns string
		groups     []rulefmt.RuleGroup
	}
	var all []nsFile
	tenants, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("-ruler.rule-path: %w", err)
	}
	for _, td := range tenants {
		if !td.IsDir() {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(dir, td.Name()))
		if err != nil {
			return 0, fmt.Errorf("-ruler.rule-path: %w", err)
		}
		for _, e := range entries {
			ext := filepath.Ext(e.Name())
			if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
				continue
			}
			path := filepath.Join(dir, td.Name(), e.Name())
			b, err := os.ReadFile(path)
			if err != nil {
				return 0, fmt.Errorf("-ruler.rule-path: %w", err)
			}
			groups, err := ParseNamespace(path, b)
			if err != nil {
				return 0, err
			}
			all = append(all, nsFile{tenant: td.Name(), ns: strings.TrimSuffix(e.Name(), ext), groups: groups})
		}
	}
	for _, f := range all {
		if err := s.SetNamespace(f.tenant, f.ns, f.groups); err != nil {
			return 0, err
		}
	}
	return len(all), nil
}
