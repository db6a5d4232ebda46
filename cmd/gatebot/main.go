// Command gatebot runs the gatebot Teams approval bot and its tools.
//
//	gatebot serve [--config gatebot.yaml]    start the bot
//	gatebot config check FILE                validate a config without starting
//	gatebot audit [--config …] [filters]     print the audit log
//	gatebot gates list|show|cancel|migrate   operate on approval gates
//	gatebot manifest [--config …] --out app.zip build the Teams app package
//	gatebot token create|list|revoke         API personal access tokens
//	gatebot version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/gatebot/gatebot/pipelines"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatebot:", err)
	}
	os.Exit(exitCode(err))
}

// exitCode is 0 for success, 2 for a mistake in the command line and 1
// for anything else.
func exitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.As(err, new(usageError)):
		return 2
	}
	return 1
}

const usage = `usage: gatebot COMMAND [flags]

commands:
  serve      start the bot (no --config: local dev mode with the example config)
  config     check a config file (gatebot config check FILE)
  audit      print the audit log
  gates      list, show or cancel approval gates; migrate the Redis layout
  token      create, list or revoke API tokens
  manifest   build the Teams app package
  version    print the version
  help       gatebot help COMMAND [SUBCOMMAND] explains one

Every command takes -h/--help.`

const (
	serveUsage       = "usage: gatebot serve [--config FILE] [--pprof 127.0.0.1:6060]\n\nStart the bot. Without --config (or GATEBOT_CONFIG) it runs in local dev mode\nwith the bundled example config and an embedded in-memory store."
	configUsage      = "usage: gatebot config check FILE\n\nsubcommands:\n  check   validate a config file, listing every problem"
	configCheckUsage = "usage: gatebot config check FILE\n\nValidate FILE (${NAME} references are expanded from the environment) and list\nevery problem with its field path. Exit status 1 when there is any."
	versionUsage     = "usage: gatebot version\n\nPrint gatebot's version."
)

// run is main without the process: tests call it directly. A command that
// printed its usage on request succeeds.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	err := runCommand(ctx, args, getenv, stdout, stderr)
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

func runCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError("no command given\n" + usage)
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr, nil)
	case "config":
		return dispatch("config", args[1:], []subcommand{
			{name: "check", run: func(a []string) error { return configCheck(a, getenv, stdout) }},
		}, configUsage, stdout)
	case "audit":
		return audit(ctx, args[1:], getenv, stdout)
	case "gates":
		return gatesCmd(ctx, args[1:], getenv, stdout)
	case "token":
		return tokenCmd(ctx, args[1:], getenv, stdout, stderr)
	case "manifest":
		return buildManifest(args[1:], getenv, stdout)
	case "version", "--version", "-v":
		if _, err := parseArgs(newFlags("version"), args[1:], "version", versionUsage, stdout); err != nil {
			return err
		}
		if len(args) > 1 {
			return usageError(fmt.Sprintf("version: unexpected argument %q\n%s", args[1], versionUsage))
		}
		fmt.Fprintln(stdout, "gatebot", version)
		return nil
	case "help", "-h", "--help":
		if len(args) > 1 && args[0] == "help" {
			// gatebot help token create == gatebot token create --help
			return runCommand(ctx, append(args[1:], "--help"), getenv, stdout, stderr)
		}
		fmt.Fprintln(stdout, usage)
		return errHelp
	}
	return usageError(fmt.Sprintf("unknown command %q\n%s", args[0], usage))
}

// loadConfig reads path (or the bundled example when path is empty) and
// applies defaults. It refuses a config whose shape is wrong (unknown
// fields, values of the wrong kind) but does not check its meaning: the
// tools that only need redis: use it; serve and config check use
// loadValidConfig.
func loadConfig(path string, getenv func(string) string) (*Config, []byte, error) {
	data := exampleConfig
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("read config: %w", err)
		}
		data = b
	}
	c, err := parseConfig(data, getenv)
	if err != nil {
		return nil, nil, err
	}
	c.applyDefaults()
	return c, data, nil
}

// loadValidConfig loads and validates a config, reporting the problems of
// shape and of meaning together in one *ConfigError.
func loadValidConfig(path string, getenv func(string) string, reg registry) (*Config, map[string]pipelines.Provider, error) {
	c, shape, err := readConfig(path, getenv)
	if err != nil {
		return nil, nil, err
	}
	built, err := c.validateAll(shape, reg)
	return c, built, err
}

// readConfig reads and decodes a config with defaults applied, returning
// its shape problems apart so that validateAll can report them together
// with the rest.
func readConfig(path string, getenv func(string) string) (*Config, *ConfigError, error) {
	data := exampleConfig
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("read config: %w", err)
		}
		data = b
	}
	c, err := parseConfig(data, getenv)
	var shape *ConfigError
	if c == nil || (err != nil && !errors.As(err, &shape)) {
		return nil, nil, err
	}
	c.applyDefaults()
	return c, shape, nil
}

// validateAll is validate with the shape problems found while parsing
// listed first.
func (c *Config) validateAll(shape *ConfigError, reg registry) (map[string]pipelines.Provider, error) {
	built, err := c.validate(reg)
	if shape == nil {
		return built, err
	}
	all := &ConfigError{Problems: slices.Clone(shape.Problems), UnsetEnv: c.unsetEnv}
	var semantic *ConfigError
	if errors.As(err, &semantic) {
		all.Problems = append(all.Problems, semantic.Problems...)
	}
	return nil, all
}

func configCheck(args []string, getenv func(string) string, stdout io.Writer) error {
	pos, err := parseArgs(newFlags("config check"), args, "config check", configCheckUsage, stdout)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, "config check", "the config FILE", configCheckUsage); err != nil {
		return err
	}
	c, _, err := loadValidConfig(pos[0], getenv, providerRegistry(nil, nil))
	if err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	fmt.Fprintf(stdout, "%s: ok (%d pipelines, %d providers, %d channels)\n", pos[0], len(c.Pipelines), len(c.Providers), len(c.Channels))
	return nil
}
