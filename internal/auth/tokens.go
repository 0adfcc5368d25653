package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/argus-tsdb/argus/internal/tenant"
)

// HashToken returns the hex SHA-256 of token: what the token file lists for
// it. It is the same as `printf %s "$TOKEN" | sha256sum` (printf, not echo,
// which appends a newline that becomes part of the hash).
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// tokenFile is the YAML format of -auth.token-file.
type tokenFile struct {
	Tokens []tokenEntry `yaml:"tokens"`
}

type tokenEntry struct {
	SHA256  string   `yaml:"sha256"`
	Tenants []string `yaml:"tenants"`
	// Admin lets the token call the admin API (deletion) for its tenants.
	Admin bool `yaml:"admin"`
}

// tokenSet is one loaded token file. It is replaced whole by a reload, never
// modified, so it is safe for concurrent reads.
type tokenSet struct {
	hashes  [][sha256.Size]byte
	tenants []map[string]struct{} // tenants[i] are the tenants of hashes[i]
	// single[i] is the one tenant of hashes[i], or "" if it lists several.
	single []string
	// admin[i] says whether hashes[i] may call the admin API.
	admin []bool
}

// compareHashes compares two hashes in constant time. It is a variable so
// that a test can check every lookup goes through it, for every entry.
var compareHashes = subtle.ConstantTimeCompare

// lookup returns the index of the entry of token, or -1. It compares the
// token's hash with every entry, in constant time and without stopping at a
// match, so its duration depends on the number of entries only.
func (s *tokenSet) lookup(token string) int {
	sum := sha256.Sum256([]byte(token))
	match := -1
	for i := range s.hashes {
		eq := compareHashes(sum[:], s.hashes[i][:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	return match
}

// allows reports whether entry i may act as every tenant of ids.
func (s *tokenSet) allows(i int, ids []string) bool {
	for _, id := range ids {
		if _, ok := s.tenants[i][id]; !ok {
			return false
		}
	}
	return true
}

// parseTokens decodes and validates a token file. requireTenant, if not
// empty, must be listed by some token (Anonymous when multi-tenancy is
// disabled). Error messages never quote a sha256 field: a token pasted there
// by mistake must not reach the logs.
func parseTokens(data []byte, requireTenant string) (*tokenSet, error) {
	var f tokenFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(f.Tokens) == 0 {
		// An empty file is more likely a half-written one than a wish to
		// refuse every request; refusing it keeps the last good file.
		return nil, errors.New("lists no tokens")
	}
	s := &tokenSet{
		hashes:  make([][sha256.Size]byte, len(f.Tokens)),
		tenants: make([]map[string]struct{}, len(f.Tokens)),
		single:  make([]string, len(f.Tokens)),
		admin:   make([]bool, len(f.Tokens)),
	}
	seen := make(map[[sha256.Size]byte]int, len(f.Tokens))
	var errs []error
	required := requireTenant == ""
	for i, e := range f.Tokens {
		n := i + 1 // tokens are numbered from 1 in messages, as lines are
		h, err := hex.DecodeString(e.SHA256)
		if err != nil || len(h) != sha256.Size {
			errs = append(errs, fmt.Errorf("token %d: sha256 must be %d hex digits (the hex SHA-256 of the token, never the token itself)", n, 2*sha256.Size))
			continue
		}
		copy(s.hashes[i][:], h)
		s.admin[i] = e.Admin
		if prev, dup := seen[s.hashes[i]]; dup {
			errs = append(errs, fmt.Errorf("token %d: same sha256 as token %d", n, prev))
		}
		seen[s.hashes[i]] = n
		if len(e.Tenants) == 0 {
			errs = append(errs, fmt.Errorf("token %d: lists no tenants", n))
			continue
		}
		s.tenants[i] = make(map[string]struct{}, len(e.Tenants))
		for _, id := range e.Tenants {
			if err := tenant.Validate(id); err != nil {
				errs = append(errs, fmt.Errorf("token %d: tenant %q: %w", n, id, err))
				continue
			}
			s.tenants[i][id] = struct{}{}
		}
		if ids := slices.Compact(slices.Sorted(slices.Values(e.Tenants))); len(ids) == 1 {
			s.single[i] = ids[0]
		}
		if _, ok := s.tenants[i][requireTenant]; ok {
			required = true
		}
	}
	if !required {
		errs = append(errs, fmt.Errorf("no token lists tenant %q, the tenant of every request when -auth.multitenancy-enabled=false", requireTenant))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}
