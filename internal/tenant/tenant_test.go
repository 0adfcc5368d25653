package tenant

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"
)

func TestValidate(t *testing.T) {
	for _, ok := range []string{"team-a", "a", "A_b.c*d'e(f)!", strings.Repeat("x", MaxLength)} {
		require.NoError(t, Validate(ok), ok)
	}
	for _, bad := range []string{"", ".", "..", "a/b", "a b", "tenant|b", "é", strings.Repeat("x", MaxLength+1)} {
		require.ErrorIs(t, Validate(bad), ErrInvalidTenant, bad)
	}
}

func TestFromContext(t *testing.T) {
	_, err := FromContext(context.Background())
	require.ErrorIs(t, err, ErrNoTenant)

	got, err := FromContext(With(context.Background(), "a"))
	require.NoError(t, err)
	require.Equal(t, "a", got)

	// What a gRPC server sees of what a client sent with OutgoingContext.
	md, _ := metadata.FromOutgoingContext(OutgoingContext(context.Background(), "b"))
	got, err = FromContext(metadata.NewIncomingContext(context.Background(), md))
	require.NoError(t, err)
	require.Equal(t, "b", got)
}
