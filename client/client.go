package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/proto/argusquerypb"
)

// Options configure a Client.
type Options struct {
	// Tenant is sent as x-scope-orgid on every call; "a|b" reads several
	// tenants when the querier allows federation. Empty sends none (a
	// single-tenant deployment, or a token naming one tenant).
	Tenant string
	// Token, when set, is sent as "authorization: Bearer <Token>" (for
	// queriers with -auth.type=token).
	Token string
	// DialOptions are added to Dial's; without transport credentials among
	// them, the connection is plaintext, as the querier's gRPC port is.
	DialOptions []grpc.DialOption
}

// Client calls one querier. It is safe for concurrent use.
type Client struct {
	conn   *grpc.ClientConn // nil when New was given a connection
	api    argusquerypb.QueryClient
	tenant string
	token  string
}

// maxFrame is the largest message the client accepts: frames are about
// 1 MiB, and a single series point with huge labels may exceed that.
const maxFrame = 64 << 20

// Dial returns a client of the querier at addr (host:port). It does not
// connect until the first call, and Close releases the connection.
func Dial(addr string, opts Options) (*Client, error) {
	dial := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxFrame)),
	}, opts.DialOptions...)
	conn, err := grpc.NewClient(addr, dial...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	c := New(conn, opts)
	c.conn = conn
	return c, nil
}

// New returns a client over conn, which the caller keeps owning
// (Options.DialOptions are ignored).
func New(conn grpc.ClientConnInterface, opts Options) *Client {
	return &Client{api: argusquerypb.NewQueryClient(conn), tenant: opts.Tenant, token: opts.Token}
}

// Close closes the connection Dial opened; it is a no-op for New's.
func (c *Client) Close() error {
	if c.conn == nil {
		return nil
	}
	return c.conn.Close()
}

// API returns the generated client of the service, for calls this package
// does not wrap; pass its contexts through Context.
func (c *Client) API() argusquerypb.QueryClient { return c.api }

// Context returns ctx with the client's tenant and token metadata.
func (c *Client) Context(ctx context.Context) context.Context {
	var kv []string
	if c.tenant != "" {
		kv = append(kv, "x-scope-orgid", c.tenant)
	}
	if c.token != "" {
		kv = append(kv, "authorization", "Bearer "+c.token)
	}
	if len(kv) == 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

// Error is a refused call: the querier's gRPC status. Its message is the
// HTTP API's error text for the same request, which starts with the
// err-argus-* ID when the refusal has one.
type Error struct {
	Code    codes.Code
	ID      string // "" when the refusal has no ID (a parse error, for example)
	Message string
}

func (e *Error) Error() string { return e.Message }

// GRPCStatus lets status.FromError and status.Code see the status.
func (e *Error) GRPCStatus() *status.Status { return status.New(e.Code, e.Message) }

// asError converts a gRPC error into an *Error; other errors (a context
// that ended before the call) pass through.
func asError(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	s, ok := status.FromError(err)
	if !ok {
		return err
	}
	out := &Error{Code: s.Code(), Message: s.Message()}
	if id, _, ok := strings.Cut(s.Message(), ":"); ok && strings.HasPrefix(id, "err-argus-") && !strings.ContainsAny(id, " \t") {
		out.ID = id
	}
	return out
}

// millis is t in Unix ms.
func millis(t time.Time) int64 { return t.UnixMilli() }
