//go:build !unix

package bot

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
