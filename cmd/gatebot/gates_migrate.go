package main

import (
	"context"
	"fmt"
	"io"
)

const gatesMigrateUsage = `usage: gatebot gates migrate [--config FILE]

Convert the Redis data of an older gatebot (layout 2) to this gatebot's
layout 3, which takes about half the memory per gate. Until then this
gatebot keeps writing layout 2, which older gatebots read, so run it once
every replica runs this version: older ones cannot read layout 3. Running
gatebots switch within 10 seconds. Running it again does no harm.`

// gatesMigrate runs `gatebot gates migrate`.
func gatesMigrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlags("gates migrate")
	cfgPath := fs.String("config", getenv("GATEBOT_CONFIG"), "config file")
	pos, err := parseArgs(fs, args, "gates migrate", gatesMigrateUsage, stdout)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, "gates migrate", "", gatesMigrateUsage); err != nil {
		return err
	}
	store, closeRedis, err := openGates(*cfgPath, getenv)
	if err != nil {
		return err
	}
	defer closeRedis()
	if err := store.MigrateLayout(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	_, err = fmt.Fprintln(stdout, "the Redis data is layout 3")
	return err
}
