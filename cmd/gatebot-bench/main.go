// Command gatebot-bench is gatebot's load and fault tool. It starts a
// gatebot with auth on against in-process fakes of the Bot Framework
// identity provider, the Teams Bot Connector and a CI provider, drives it
// as Teams users do, and reports latencies, card sends, provider runs per
// gate and gatebot's CPU and memory. Everything listens on loopback and
// every run stops by itself.
//
//	go run ./cmd/gatebot-bench --scenario flow --conversations 4 --gates 8 --duration 20s --assert-exact
//	go run ./cmd/gatebot-bench -h
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errAssert):
		fmt.Fprintln(os.Stderr, "gatebot-bench:", err)
		os.Exit(1)
	default:
		var ue usageError
		fmt.Fprintln(os.Stderr, "gatebot-bench:", err)
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(3)
	}
}

// usageError is a mistake on the command line.
type usageError string

func (e usageError) Error() string { return string(e) }

// errAssert is returned when --assert-exact fails.
var errAssert = errors.New("exactly-once assertion failed")

// run is main without the process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opt, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	rep, err := execute(ctx, opt, stderr)
	if rep != nil {
		if opt.json {
			if err := rep.writeJSON(stdout); err != nil {
				return err
			}
		} else {
			rep.writeTable(stdout)
		}
	}
	if err != nil {
		return err
	}
	if opt.assertExact && !rep.ExactOnce {
		return fmt.Errorf("%w: %d missing, %d duplicate, %d unexpected provider runs", errAssert, rep.Runs.Missing, rep.Runs.Duplicate, rep.Runs.Unexpected)
	}
	if opt.assertExact && opt.killOneAfter > 0 && rep.Recovery == nil {
		return fmt.Errorf("%w: replica 1 was not killed: every gate ended before --kill-one-after %s, so nothing was tested", errAssert, opt.killOneAfter)
	}
	if opt.assertExact && rep.FinalCards != nil && !rep.FinalOK {
		return fmt.Errorf("%w: %d of %d approved gates do not show their final state on their card", errAssert, rep.FinalCards.Approved-rep.FinalCards.Shown-rep.FinalCards.Interrupted, rep.FinalCards.Approved)
	}
	if opt.assertExact && rep.Rolling != nil && !rep.Rolling.OK {
		return fmt.Errorf("%w: rolling: a replica's /readyz was not 200 or did not say that the replicas disagree: %s", errAssert, strings.Join(rep.Rolling.Readyz, "; "))
	}
	if opt.assertExact && rep.Soak != nil && !rep.Soak.OK {
		return fmt.Errorf("%w: soak: %s", errAssert, strings.Join(rep.Soak.Failures, "; "))
	}
	if opt.assertExact && rep.Faults != nil && !rep.Faults.OK {
		return fmt.Errorf("%w: fault checks failed: %s", errAssert, rep.Faults.failed())
	}
	if opt.assertExact && rep.Runs.Approved == 0 {
		return fmt.Errorf("%w: no gate was approved, nothing was measured", errAssert)
	}
	return nil
}
