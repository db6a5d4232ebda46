package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// commandPaths is every command and subcommand a user can type.
var commandPaths = [][]string{
	{"serve"},
	{"config"},
	{"config", "check"},
	{"audit"},
	{"gates"},
	{"gates", "list"},
	{"gates", "show"},
	{"gates", "cancel"},
	{"token"},
	{"token", "create"},
	{"token", "list"},
	{"token", "revoke"},
	{"manifest"},
	{"version"},
}

// TestHelpForEveryCommand asks for help the three ways a user does: each
// prints the command's usage on stdout, nothing on stderr, and succeeds.
func TestHelpForEveryCommand(t *testing.T) {
	t.Parallel()
	for _, path := range commandPaths {
		name := strings.Join(path, " ")
		ways := map[string][]string{
			"--help": append(append([]string(nil), path...), "--help"),
			"-h":     append(append([]string(nil), path...), "-h"),
			"help":   append([]string{"help"}, path...),
		}
		for way, args := range ways {
			t.Run(name+" "+way, func(t *testing.T) {
				t.Parallel()
				var out, errb bytes.Buffer
				err := run(t.Context(), args, env(nil), &out, &errb)
				if err != nil || exitCode(err) != 0 {
					t.Fatalf("gatebot %s: %v (exit %d)", strings.Join(args, " "), err, exitCode(err))
				}
				if !strings.HasPrefix(out.String(), "usage:") || !strings.Contains(out.String(), "gatebot "+name) {
					t.Errorf("stdout is not %s's usage:\n%s", name, out.String())
				}
				if errb.Len() != 0 {
					t.Errorf("stderr = %q", errb.String())
				}
			})
		}
	}
	var out bytes.Buffer
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		out.Reset()
		if err := run(t.Context(), args, env(nil), &out, &out); err != nil || !strings.Contains(out.String(), "gates ") {
			t.Errorf("gatebot %v: %v\n%s", args, err, out.String())
		}
	}
}

// TestFlagHelpListsFlags checks that a command's help names its flags.
func TestFlagHelpListsFlags(t *testing.T) {
	t.Parallel()
	for args, flags := range map[string][]string{
		"gates list --help":   {"-state", "-pipeline", "-json", "-config", "-limit"},
		"gates cancel --help": {"-reason", "-config"},
		"audit --help":        {"-since", "-until", "-user", "-pipeline", "-json"},
		"serve --help":        {"-config"},
		"manifest --help":     {"-out", "-app-id"},
	} {
		var out bytes.Buffer
		if err := run(t.Context(), strings.Fields(args), env(nil), &out, &out); err != nil {
			t.Fatalf("%s: %v", args, err)
		}
		for _, f := range flags {
			if !strings.Contains(out.String(), f) {
				t.Errorf("%s does not list %s:\n%s", args, f, out.String())
			}
		}
	}
}

// TestUsageErrors checks that mistakes exit 2 and name the flag or word.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "gatebot.yaml")
	if err := os.WriteFile(cfg, exampleConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"deploy"}, `unknown command "deploy"`},
		{[]string{"help", "deploy"}, `unknown command "deploy"`},
		{[]string{"config"}, "config: no subcommand given"},
		{[]string{"config", "lint"}, `config: unknown subcommand "lint" (known: check)`},
		{[]string{"config", "check"}, "config check: the config FILE is required"},
		{[]string{"config", "check", cfg, "other.yaml"}, `config check: unexpected argument "other.yaml"`},
		{[]string{"config", "check", "--strict", cfg}, "-strict"},
		{[]string{"gates"}, "gates: no subcommand given"},
		{[]string{"gates", "delete"}, `unknown subcommand "delete" (known: list, show, cancel, migrate)`},
		{[]string{"gates", "list", "pending"}, `gates list: unexpected argument "pending"`},
		{[]string{"gates", "list", "--status", "pending"}, "-status"},
		{[]string{"gates", "list", "--state", "open"}, `--state: "open" is not a state`},
		{[]string{"gates", "list", "--limit", "0"}, "--limit"},
		{[]string{"gates", "show"}, "gates show: the gate ID is required"},
		{[]string{"gates", "show", "a", "b"}, `gates show: unexpected argument "b"`},
		{[]string{"gates", "cancel", "g1"}, "--reason is required"},
		{[]string{"gates", "cancel", "--reason", "x"}, "the gate ID is required"},
		{[]string{"audit", "extra"}, `audit: unexpected argument "extra"`},
		{[]string{"audit", "--pipline", "x"}, "-pipline"},
		{[]string{"serve", "gatebot.yaml"}, `serve: unexpected argument "gatebot.yaml"`},
		{[]string{"serve", "--conifg", "x"}, "-conifg"},
		{[]string{"manifest", "out.zip"}, `manifest: unexpected argument "out.zip"`},
		{[]string{"version", "now"}, `version: unexpected argument "now"`},
		{[]string{"token", "list", "--config", cfg, "extra"}, `token list: unexpected argument "extra"`},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		err := run(t.Context(), c.args, env(nil), &out, &errb)
		if exitCode(err) != 2 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("gatebot %s: err = %v (exit %d), want exit 2 mentioning %q", strings.Join(c.args, " "), err, exitCode(err), c.want)
		}
		if out.Len() != 0 {
			t.Errorf("gatebot %s printed %q on stdout", strings.Join(c.args, " "), out.String())
		}
	}
}

func TestFlagsAfterArguments(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "gatebot.yaml")
	if err := os.WriteFile(cfg, exampleConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"config", "check", cfg}, env(nil), &out, &out); err != nil {
		t.Fatal(err)
	}
	// "--" ends the flags: a file named like a flag is still a file.
	err := run(t.Context(), []string{"config", "check", "--", "--help"}, env(nil), &out, &out)
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "--help") {
		t.Errorf(`config check -- --help must try to read a file named --help, got %v`, err)
	}
}
