package apierror

import (
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
)

// grpcCodeOf is the gRPC code of the IDs whose code is not the one their
// HTTP status maps to (statusCodes): the per-query limits are exhausted
// resources, not invalid arguments, and a timeout is a deadline.
var grpcCodeOf = map[ID]codes.Code{
	MaxFetchedSeriesPerQuery: codes.ResourceExhausted,
	MaxFetchedChunksPerQuery: codes.ResourceExhausted,
	QueryTimeout:             codes.DeadlineExceeded,
	HAReplicaNotElected:      codes.OK,
	NotSupported:             codes.Unimplemented,
}

// statusCodes maps the HTTP statuses of the catalogue to gRPC codes.
var statusCodes = map[int]codes.Code{
	http.StatusBadRequest:           codes.InvalidArgument,
	http.StatusUnauthorized:         codes.Unauthenticated,
	http.StatusForbidden:            codes.PermissionDenied,
	http.StatusNotFound:             codes.NotFound,
	http.StatusMethodNotAllowed:     codes.Unimplemented,
	http.StatusNotAcceptable:        codes.InvalidArgument,
	http.StatusUnsupportedMediaType: codes.InvalidArgument,
	http.StatusUnprocessableEntity:  codes.InvalidArgument,
	http.StatusTooManyRequests:      codes.ResourceExhausted,
	499:                             codes.Canceled, // a client that went away, as Prometheus answers it
	http.StatusInternalServerError:  codes.Internal,
	http.StatusServiceUnavailable:   codes.Unavailable,
}

// GRPCCode is the gRPC status code that the gRPC APIs (the public query API,
// proto/argusquerypb) answer id with; the message is the same as over HTTP.
// An unknown ID is Internal.
func (id ID) GRPCCode() codes.Code {
	if c, ok := grpcCodeOf[id]; ok {
		return c
	}
	e, ok := byID[id]
	if !ok {
		return codes.Internal
	}
	return StatusGRPCCode(e.Status)
}

// StatusGRPCCode maps an HTTP status to the gRPC code of the same refusal,
// for the errors that have no ID (Prometheus's own API errors, by their
// status). A status of no refusal maps to Unknown.
func StatusGRPCCode(status int) codes.Code {
	if c, ok := statusCodes[status]; ok {
		return c
	}
	return codes.Unknown
}

// grpcReference renders the gRPC mapping of docs/errors.md: every ID of the
// scopes a gRPC client can meet (requests and queries), and the errors of
// Prometheus's API that have no ID.
func grpcReference() string {
	var b strings.Builder
	b.WriteString("\n### gRPC status codes\n\n")
	b.WriteString("The public gRPC query API (`argus.query.v1.Query`, on the querier's gRPC port) refuses with a gRPC\n" +
		"status whose message is exactly the HTTP answer's error text, starting with its ID; its code is:\n\n")
	b.WriteString("| ID | HTTP status | gRPC code |\n| --- | --- | --- |\n")
	for _, e := range Catalogue {
		if e.Scope != ScopeQuery && e.ID != MissingTenant && e.ID != InvalidTenant && e.ID != Unauthorized && e.ID != NotReady && e.ID != Internal {
			continue
		}
		fmt.Fprintf(&b, "| [`%s`](#%s) | %d | `%s` |\n", e.ID, e.ID, e.Status, e.ID.GRPCCode())
	}
	b.WriteString("\nErrors of Prometheus's own API that carry no ID of their own (a cancelled client, an engine timeout;\n" +
		"bad_data and execution get err-argus-bad-query and err-argus-query-failed, above) keep their\n" +
		"message and map by their errorType:\n\n")
	b.WriteString("| errorType (HTTP status) | gRPC code |\n| --- | --- |\n")
	for _, r := range []struct {
		typ    string
		status int
	}{
		{"bad_data", 400}, {"execution", 422}, {"canceled", 499}, {"timeout", 503}, {"unavailable", 503}, {"internal", 500}, {"not_found", 404},
	} {
		fmt.Fprintf(&b, "| %s (%d) | `%s` |\n", r.typ, r.status, ErrorTypeGRPCCode(r.typ))
	}
	return b.String()
}

// ErrorTypeGRPCCode maps the errorType of an error of Prometheus's API that
// has no ID to its gRPC code; an unknown type is Unknown.
func ErrorTypeGRPCCode(errorType string) codes.Code {
	switch errorType {
	case "bad_data", "execution", "not_acceptable":
		return codes.InvalidArgument
	case "canceled":
		return codes.Canceled
	case "timeout":
		return codes.DeadlineExceeded
	case "unavailable":
		return codes.Unavailable
	case "internal":
		return codes.Internal
	case "not_found":
		return codes.NotFound
	}
	return codes.Unknown
}
