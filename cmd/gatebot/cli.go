package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// How every gatebot command reads its command line: flags and positional
// arguments in any order, -h/--help printing the command's usage to stdout
// (exit 0), and every mistake a usageError (exit 2) that names the flag or
// word at fault.

// usageError is a mistake in the command line.
type usageError string

func (e usageError) Error() string { return string(e) }

// errHelp reports that a command printed its usage because it was asked
// to; run turns it into success.
var errHelp = errors.New("help printed")

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// newFlags makes a flag set that returns its errors instead of printing
// them, so the caller decides where usage goes.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// printUsage writes a command's synopsis and its flags.
func printUsage(w io.Writer, synopsis string, fs *flag.FlagSet) {
	fmt.Fprintln(w, synopsis)
	if fs == nil {
		return
	}
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if !hasFlags {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// parseArgs parses fs from args, allowing flags after positional
// arguments (`gatebot gates show ID --config x.yaml`); everything after
// "--" is positional. On -h/--help it prints the usage to stdout and
// returns errHelp. name is the command as the user typed it.
func parseArgs(fs *flag.FlagSet, args []string, name, synopsis string, stdout io.Writer) ([]string, error) {
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, synopsis, fs)
			return nil, errHelp
		}
		if err != nil {
			return nil, usageError(fmt.Sprintf("%s: %v\n%s", name, err, synopsis))
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// wantArgs checks the number of positional arguments: exactly n, naming
// the first stray one or what is missing.
func wantArgs(pos []string, n int, name, what, synopsis string) error {
	switch {
	case len(pos) > n:
		return usageError(fmt.Sprintf("%s: unexpected argument %q\n%s", name, pos[n], synopsis))
	case len(pos) < n:
		return usageError(fmt.Sprintf("%s: %s is required\n%s", name, what, synopsis))
	}
	return nil
}

// subcommand is one word of a command group (token create, gates list…).
type subcommand struct {
	name    string
	aliases []string
	run     func(args []string) error
}

// dispatch runs the subcommand args[0] of group, printing the group's
// usage for help and refusing unknown words.
func dispatch(group string, args []string, subs []subcommand, synopsis string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError(fmt.Sprintf("%s: no subcommand given\n%s", group, synopsis))
	}
	if isHelp(args[0]) {
		if len(args) > 1 && args[0] == "help" {
			// gatebot token help create == gatebot token create --help
			return dispatch(group, []string{args[1], "--help"}, subs, synopsis, stdout)
		}
		fmt.Fprintln(stdout, synopsis)
		return errHelp
	}
	for _, s := range subs {
		if args[0] == s.name || containsWord(s.aliases, args[0]) {
			return s.run(args[1:])
		}
	}
	var names []string
	for _, s := range subs {
		names = append(names, s.name)
	}
	return usageError(fmt.Sprintf("%s: unknown subcommand %q (known: %s)\n%s", group, args[0], strings.Join(names, ", "), synopsis))
}

func containsWord(list []string, w string) bool {
	for _, v := range list {
		if v == w {
			return true
		}
	}
	return false
}
