// Command gatebot runs the gatebot Teams approval bot and its tools.
//
//	gatebot serve [--config gatebot.yaml]    start the bot
//	gatebot config check FILE                validate a config without starting
//	gatebot audit [--config …] [filters]     print the audit log
//	gatebot manifest [--config …] -o app.zip build the Teams app package
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
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "gatebot:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "gatebot:", err)
		os.Exit(1)
	}
}

// usageError is a mistake in the command line.
type usageError string

func (e usageError) Error() string { return string(e) }

const usage = `usage:
  gatebot serve [--config FILE]            start the bot (no config: local dev mode with the example config)
  gatebot config check FILE                validate a config file
  gatebot audit [--config FILE] [--pipeline P] [--user U] [--since T] [--until T] [--json]
  gatebot manifest [--config FILE] --out app.zip [--app-id ID] [--website-url URL]
  gatebot token create|list|revoke …      manage API tokens (gatebot token help)
  gatebot version`

// run is main without the process: tests call it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError("no command given\n" + usage)
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stderr, nil)
	case "config":
		if len(args) < 2 || args[1] != "check" {
			return usageError("usage: gatebot config check FILE")
		}
		return configCheck(args[2:], getenv, stdout)
	case "audit":
		return audit(ctx, args[1:], getenv, stdout)
	case "token":
		return tokenCmd(ctx, args[1:], getenv, stdout, stderr)
	case "manifest":
		return buildManifest(args[1:], getenv, stdout)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "gatebot", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return usageError(fmt.Sprintf("unknown command %q\n%s", args[0], usage))
}

// loadConfig reads path (or the bundled example when path is empty),
// applies defaults and validates everything.
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

func configCheck(args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) != 1 {
		return usageError("usage: gatebot config check FILE")
	}
	c, _, err := loadConfig(args[0], getenv)
	if err != nil {
		return err
	}
	if _, err := c.validate(providerRegistry(nil, nil)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok (%d pipelines, %d providers, %d channels)\n", args[0], len(c.Pipelines), len(c.Providers), len(c.Channels))
	return nil
}
