package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/common/model"

	"github.com/argus-tsdb/argus/client"
	"github.com/argus-tsdb/argus/client/promjson"
)

// `argus query` runs one PromQL query over the public gRPC query API
// (package client), so that the API can be tried without writing code.

const queryUsage = `Usage: argus query -addr=HOST:PORT [-tenant=T] [-time=TIME] [flags] 'expr'
       argus query -addr=HOST:PORT [-tenant=T] -start=TIME -end=TIME -step=DURATION [flags] 'expr'

Run a PromQL query against the gRPC query API of an argus querier (its
-server.grpc-listen-port). Without -start it is an instant query at -time
(default now); with -start, -end and -step a range query. TIME is Unix
seconds (fractions allowed) or RFC 3339; DURATION is 15s, 1m, ... or
seconds. -output=table (default) prints one row per sample; -output=json
prints exactly the "data" object that /prometheus/api/v1/query (or
query_range) answers for the same query. Warnings go to stderr. A refused
query prints its error (with its err-argus-* ID) on stderr and exits 1.

Flags:
`

// queryFlags are the flags of `argus query`.
type queryFlags struct {
	addr, tenant, token, output string
	at, start, end, step        string
	timeout                     time.Duration
}

func (f *queryFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "addr", "localhost:9095", "The querier's gRPC address, host:port.")
	fs.StringVar(&f.tenant, "tenant", "", "The tenant (x-scope-orgid); a|b reads several with federation.")
	fs.StringVar(&f.token, "token", "", "A bearer token, for queriers with -auth.type=token (default $ARGUS_TOKEN).")
	fs.StringVar(&f.output, "output", "table", "table or json.")
	fs.StringVar(&f.at, "time", "", "The evaluation time of an instant query (default now).")
	fs.StringVar(&f.start, "start", "", "The start of a range query.")
	fs.StringVar(&f.end, "end", "", "The end of a range query (default now).")
	fs.StringVar(&f.step, "step", "", "The step of a range query.")
	fs.DurationVar(&f.timeout, "timeout", 0, "A client timeout for the query (0: the tenant's).")
}

// runQuery is `argus query`: it returns the exit status.
func runQuery(args []string, stdout, stderr io.Writer) int {
	var f queryFlags
	fs := flag.NewFlagSet("argus query", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, queryUsage); fs.PrintDefaults() }
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "argus query: want one PromQL expression, got %d arguments\n", fs.NArg())
		return 2
	}
	if f.output != "table" && f.output != "json" {
		fmt.Fprintf(stderr, "argus query: -output=%s: want table or json\n", f.output)
		return 2
	}
	if f.token == "" {
		f.token = os.Getenv("ARGUS_TOKEN")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := f.query(ctx, fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "argus query: %v\n", err)
		return 1
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	for _, i := range res.Infos {
		fmt.Fprintf(stderr, "info: %s\n", i)
	}
	if err := printResult(stdout, res, f.output); err != nil {
		fmt.Fprintf(stderr, "argus query: %v\n", err)
		return 1
	}
	return 0
}

// query runs the instant or range query the flags ask for.
func (f *queryFlags) query(ctx context.Context, expr string) (*client.Result, error) {
	opts := client.QueryOptions{Timeout: f.timeout}
	if f.start == "" && (f.end != "" || f.step != "") {
		return nil, errors.New("-end and -step need -start")
	}
	c, err := client.Dial(f.addr, client.Options{Tenant: f.tenant, Token: f.token})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if f.start == "" {
		at, err := parseQueryTime("time", f.at, time.Time{})
		if err != nil {
			return nil, err
		}
		return c.Query(ctx, client.InstantQuery{Expr: expr, Time: at, QueryOptions: opts})
	}
	q := client.RangeQuery{Expr: expr, QueryOptions: opts}
	if q.Start, err = parseQueryTime("start", f.start, time.Time{}); err != nil {
		return nil, err
	}
	if q.End, err = parseQueryTime("end", f.end, time.Now()); err != nil {
		return nil, err
	}
	if q.Step, err = parseStep(f.step); err != nil {
		return nil, err
	}
	return c.QueryRange(ctx, q)
}

// parseQueryTime parses Unix seconds or RFC 3339; "" is def.
func parseQueryTime(name, s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		whole, frac := math.Modf(secs)
		return time.Unix(int64(whole), int64(math.Round(frac*1000))*int64(time.Millisecond)), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("-%s=%s: want Unix seconds or RFC 3339", name, s)
	}
	return t, nil
}

// parseStep parses a Prometheus duration (15s, 1m) or seconds.
func parseStep(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("a range query needs -step")
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(math.Round(secs*1000)) * time.Millisecond, nil
	}
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("-step=%s: %w", s, err)
	}
	return time.Duration(d), nil
}

// printResult writes res as a table or as the HTTP API's data JSON.
func printResult(w io.Writer, res *client.Result, output string) error {
	if output == "json" {
		b, err := promjson.Data(res)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	switch res.Type {
	case client.Scalar:
		fmt.Fprintf(tw, "TIME\tSCALAR\n%s\t%s\n", formatSeconds(res.ScalarT), formatValue(res.ScalarV))
	case client.String:
		fmt.Fprintf(tw, "TIME\tSTRING\n%s\t%s\n", formatSeconds(res.ScalarT), strconv.Quote(res.StringValue))
	default:
		fmt.Fprintln(tw, "SERIES\tTIME\tVALUE")
		for _, s := range res.Series {
			for _, p := range s.Floats {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Labels, formatSeconds(p.T), formatValue(p.F))
			}
			for _, p := range s.Histograms {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Labels, formatSeconds(p.T), p.H)
			}
		}
	}
	return tw.Flush()
}

func formatSeconds(ms int64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%d.%03d", ms/1000, abs(ms%1000)), "0"), ".")
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func formatValue(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
