package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// profiler fetches pprof profiles from a gatebot started with --pprof,
// for --profile-dir: a CPU profile over the driving phase, then the
// allocation and heap profiles. Profiling costs CPU itself, so the CPU
// figure of a profiled run is not comparable with an unprofiled one.
type profiler struct {
	base string // http://127.0.0.1:port
	dir  string
	cpu  chan error
}

// startCPU begins a CPU profile of d (whole seconds, at least 1).
func (p *profiler) startCPU(ctx context.Context, d time.Duration) {
	p.cpu = make(chan error, 1)
	secs := max(1, int(d.Seconds()))
	go func() {
		p.cpu <- p.fetch(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), "cpu.pprof", time.Duration(secs+30)*time.Second)
	}()
}

// finish waits for the CPU profile and fetches allocs and heap.
func (p *profiler) finish(ctx context.Context) error {
	var err error
	if p.cpu != nil {
		err = <-p.cpu
	}
	for _, name := range []string{"allocs", "heap"} {
		if e := p.fetch(ctx, "/debug/pprof/"+name, name+".pprof", 30*time.Second); e != nil && err == nil {
			err = e
		}
	}
	return err
}

func (p *profiler) fetch(ctx context.Context, path, file string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("pprof %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof %s: HTTP %d", path, resp.StatusCode)
	}
	f, err := os.Create(filepath.Join(p.dir, file))
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("pprof %s: %w", path, err)
	}
	return f.Close()
}
