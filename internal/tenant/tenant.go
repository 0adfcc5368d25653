// Package tenant carries the tenant (Mimir's "org ID") of a request across
// HTTP, contexts and gRPC metadata. It owns no policy: which tenant IDs are
// allowed and how a tenant authenticates belong to the edges that call it.
package tenant

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc/metadata"
)

// HeaderName is the HTTP header that names the tenant, as in Cortex and Mimir.
const HeaderName = "X-Scope-OrgID"

// MetadataKey is the gRPC metadata key that carries the tenant between
// components (lower case, as gRPC metadata keys are).
const MetadataKey = "x-scope-orgid"

// Anonymous is the tenant of every request when multi-tenancy is disabled.
const Anonymous = "anonymous"

// MaxLength is the longest tenant ID accepted, as in Mimir.
const MaxLength = 150

// ErrNoTenant means a request carried no tenant.
var ErrNoTenant = errors.New("no tenant ID")

// ErrInvalidTenant means a tenant ID has a character or a length that is not allowed.
var ErrInvalidTenant = errors.New("invalid tenant ID")

type contextKey struct{}

// With returns a context that carries tenant.
func With(ctx context.Context, tenant string) context.Context {
	return context.WithValue(ctx, contextKey{}, tenant)
}

// FromContext returns the tenant carried by ctx, set by With or received in
// incoming gRPC metadata.
func FromContext(ctx context.Context) (string, error) {
	if t, ok := ctx.Value(contextKey{}).(string); ok && t != "" {
		return t, nil
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(MetadataKey); len(v) == 1 && v[0] != "" {
			return v[0], nil
		}
	}
	return "", ErrNoTenant
}

// OutgoingContext returns ctx with tenant attached as outgoing gRPC metadata.
func OutgoingContext(ctx context.Context, tenant string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, MetadataKey, tenant)
}

// Separator joins the tenants of a federated read: X-Scope-OrgID: a|b.
const Separator = "|"

// IDs splits a tenant string that may name several tenants (a|b) into its
// tenant IDs, sorted and without duplicates. It does not validate them.
func IDs(orgID string) []string {
	ids := strings.Split(orgID, Separator)
	slices.Sort(ids)
	return slices.Compact(ids)
}

// Join is the inverse of IDs: the canonical tenant string of ids, which
// must be sorted and unique.
func Join(ids []string) string { return strings.Join(ids, Separator) }

// Validate checks a tenant ID against the rules Mimir applies: at most
// MaxLength characters out of [a-zA-Z0-9!-_.*'()], not empty, and not "." or "..",
// so that a tenant ID is always a safe directory name.
func Validate(t string) error {
	if t == "" {
		return fmt.Errorf("%w: empty", ErrInvalidTenant)
	}
	if len(t) > MaxLength {
		return fmt.Errorf("%w: longer than %d characters", ErrInvalidTenant, MaxLength)
	}
	if t == "." || t == ".." {
		return fmt.Errorf("%w: %q is not allowed", ErrInvalidTenant, t)
	}
	for _, r := range t {
		if !allowed(r) {
			return fmt.Errorf("%w: character %q is not allowed", ErrInvalidTenant, r)
		}
	}
	return nil
}

func allowed(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return true
	}
	switch r {
	case '!', '-', '_', '.', '*', '\'', '(', ')':
		return true
	}
	return false
}
