// Command argus runs one or every role of an Argus cluster: distributor,
// ingester, querier and scraper (-target=all, the default, runs them all in
// one process on a local data dir, the scraper when -scraper.config-file is
// set).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// usage is printed when the command line is neither flags nor a command.
const usage = `Usage:
  argus [flags]                 run the roles named by -target (argus -help lists the flags)
  argus tsdb <command> [flags]  inspect or import into a stopped argus's store (argus tsdb -help)
  argus query [flags] 'expr'    run a PromQL query over the gRPC query API (argus query -help)
`

func run(args []string) int {
	if len(args) > 0 && args[0] == "tsdb" {
		return runTSDB(args[1:], os.Stdout, os.Stderr)
	}
	if len(args) > 0 && args[0] == "query" {
		return runQuery(args[1:], os.Stdout, os.Stderr)
	}
	cfg, code := parseConfig(args)
	if code >= 0 {
		return code
	}
	if cfg.PrintVersion {
		fmt.Println(versionString())
		return 0
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "invalid configuration:", err)
		return 2
	}
	logger := newLogger(cfg.Log)
	if gogc := setDefaultGOGC(cfg.Roles()[roleIngester]); gogc > 0 {
		logger.Debug("GOGC unset: the ingester's default applies", "gogc", gogc)
	}

	app, err := newApp(cfg, logger)
	if err != nil {
		logger.Error("cannot build argus", "err", err)
		return 1
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go app.reloadOnSIGHUP(ctx)
	go func() {
		select {
		case sig := <-sigs:
			logger.Info("received signal, shutting down", "signal", sig.String())
			// Phase one: stop accepting new requests and let in-flight pushes
			// reach the WAL. Phase two (cancel) stops the services, which
			// flush and close.
			app.drain(cfg.Server.GracefulShutdownTimeout)
			cancel()
		case <-ctx.Done():
		}
	}()

	if err := app.run(ctx); err != nil {
		logger.Error("argus stopped with an error", "err", err)
		return 1
	}
	logger.Info("argus stopped")
	return 0
}

// parseConfig builds the configuration from the flag defaults, then
// -config.file, then the flags on the command line, which win. It returns a
// negative code to go on, else the exit code.
func parseConfig(args []string) (Config, int) {
	// A first parse finds -config.file (and refuses bad flags and stray
	// words, and answers -help); the second, after the file, lets the
	// command line override it.
	var first Config
	fs := flag.NewFlagSet("argus", flag.ContinueOnError)
	first.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return first, 0
		}
		return first, 2
	}
	if fs.NArg() > 0 {
		// A stray word (a misspelt command, a flag without its dash) must
		// not start a server with defaults.
		fmt.Fprintf(os.Stderr, "argus: unknown command or argument %q\n%s", fs.Arg(0), usage)
		return first, 2
	}
	var cfg Config
	fs = flag.NewFlagSet("argus", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	explicit := map[string]bool{}
	if first.ConfigFile != "" {
		root, err := loadConfigFile(&cfg, first.ConfigFile, first.ConfigExpandEnv)
		if err != nil {
			fmt.Fprintln(os.Stderr, "invalid configuration file:", err)
			return cfg, 2
		}
		explicit = flagsInFile(&cfg, fs, root)
	}
	if err := fs.Parse(args); err != nil {
		return cfg, 2
	}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	cfg.explicit = explicit
	cfg.applyDerivedDefaults()
	return cfg, -1
}

// stopContext bounds the stopping phase of the services.
func stopContext(timeout time.Duration) func() (context.Context, context.CancelFunc) {
	return func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), timeout)
	}
}

func newLogger(cfg LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level)) // Validated in Config.Validate.
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
