//go:build unix

package bot

import (
	"syscall"
	"time"
)

// processCPU returns the process's user+system CPU time, so benchmarks can
// report CPU per operation independent of how busy the machine is.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
