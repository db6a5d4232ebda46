package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// soakSample is one reading of gatebot and Redis during a soak.
type soakSample struct {
	T          float64 `json:"t_s"` // since the driving phase began
	RSSMiB     float64 `json:"rss_mib"`
	CPU        float64 `json:"cpu_s"` // gatebot's CPU since the driving phase began
	Goroutines float64 `json:"goroutines"`
	// Conns counts gatebot's established TCP connections to its listener
	// (the bench's keep-alive connections: net/http serves each with one
	// goroutine, closed after serve's 2m IdleTimeout).
	Conns int `json:"inbound_conns"`
	// OutConns counts gatebot's established HTTP connections to the
	// fakes (Connector, IdP, provider): its client keeps each idle one
	// for 90 s with two goroutines (read and write loop).
	OutConns int `json:"outbound_http_conns"`
	// Sockets counts all of gatebot's established TCP connections
	// (Redis included).
	Sockets int `json:"tcp_conns"`
	// FDs counts gatebot's open file descriptors.
	FDs      int     `json:"fds"`
	HeapMiB  float64 `json:"heap_inuse_mib"`
	RedisMiB float64 `json:"redis_used_mib"`
	// RedisKeys counts the keys of every database of the server, the
	// run's and anyone else's.
	RedisKeys int64 `json:"redis_keys"`
	// Keys counts the keys under the run's prefix by class: the first
	// segment after the prefix (g, idem, seen, posting, conv, tok, cb:ev)
	// for per-gate, per-activity, per-conversation or per-token keys, else
	// "other".
	Keys map[string]int `json:"keys"`
	// Members is the length of each of the store's other keys (indexes,
	// schedules, queues, outbox, audit), by name after the prefix; the
	// buckets of one structure (ob:cs:<xy>) add up under "ob:cs:*".
	Members map[string]int64 `json:"members"`
	// KeyKiB is the memory of the run's keys by class as MEMORY USAGE
	// counts it ("other": the structures), dedupe markers not measured
	// (too many; they grow by design): a figure of gatebot's own data that
	// neither a shared server nor Redis' hash-table doubling blurs.
	KeyKiB map[string]float64 `json:"key_kib"`

	EchoOK   int64 `json:"echo_replied"`
	EchoFail int64 `json:"echo_failed"`
	GatesOK  int64 `json:"gates_succeeded"`
	GatesBad int64 `json:"gates_unfinished"`
	// Err names what could not be read this time, if anything.
	Err string `json:"err,omitempty"`
}

// keysBut sums Keys except the classes named.
func (s soakSample) keysBut(skip ...string) int {
	n := 0
	for k, v := range s.Keys {
		if !contains(skip, k) {
			n += v
		}
	}
	return n
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// entityClasses are the key classes with one key per gate, activity,
// conversation or API token; every other key is a single structure whose
// length is sampled instead. (Token keys are counted, never named: their
// names carry token hashes.)
var entityClasses = []string{"g", "idem", "seen", "posting", "conv", "tok", "cb:ev"}

// keyClass is the class of a key (prefix removed), "" for a structure.
func keyClass(k string) string {
	if strings.HasPrefix(k, "cb:ev:") {
		return "cb:ev"
	}
	head, _, ok := strings.Cut(k, ":")
	if ok && contains(entityClasses, head) {
		return head
	}
	return ""
}

// sampler reads gatebot's /proc entry and /metrics and the Redis server.
type sampler struct {
	b         *bench
	st        *soakState
	pid       int
	cpu0      time.Duration
	rdb       *redis.Client
	prefix    string
	port      int // gatebot's listen port
	fakesPort int // the fakes' port
	http      *http.Client
}

func newSampler(b *bench, st *soakState) (*sampler, error) {
	opt, err := redis.ParseURL(b.opt.redis)
	if err != nil {
		return nil, err
	}
	s := &sampler{b: b, st: st, rdb: redis.NewClient(opt), prefix: b.prefix, http: &http.Client{Timeout: 5 * time.Second}}
	if u, err := url.Parse(b.gatebotURL); err == nil {
		s.port, _ = strconv.Atoi(u.Port())
	}
	if u, err := url.Parse(b.teams.serviceURL); err == nil {
		s.fakesPort, _ = strconv.Atoi(u.Port())
	}
	if len(b.replicas) > 0 {
		s.pid = b.replicas[0].proc.cmd.Process.Pid
	} else {
		s.pid = b.opt.pid
	}
	if s.pid > 0 {
		if p, err := readProc(s.pid); err == nil {
			s.cpu0 = p.CPU
		}
	}
	return s, nil
}

// loop samples every w.every until ctx ends, then once more; past the
// warm-up it also saves heap and goroutine profiles (with --profile-dir).
func (s *sampler) loop(ctx context.Context, w soakWindow) {
	tick := time.NewTicker(w.every)
	defer tick.Stop()
	profiled := false
	for {
		last := time.Now()
		s.record(context.WithoutCancel(ctx))
		if !profiled && s.b.prof != nil && time.Since(s.st.start) >= w.warmup {
			profiled = true
			s.profile(context.WithoutCancel(ctx), "-warm")
		}
		select {
		case <-ctx.Done():
			if time.Since(last) > w.every/2 {
				s.record(context.WithoutCancel(ctx))
			}
			return
		case <-tick.C:
		}
	}
}

// profile saves gatebot's heap and goroutine profiles with suffix.
func (s *sampler) profile(ctx context.Context, suffix string) {
	for _, name := range []string{"heap", "goroutine"} {
		if err := s.b.prof.fetch(ctx, "/debug/pprof/"+name, name+suffix+".pprof", 30*time.Second); err != nil {
			s.note("profile: " + err.Error())
		}
	}
}

func (s *sampler) note(msg string) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	s.st.sampleErr[fmt.Sprintf("%.100s", msg)]++
}

// record takes one sample and keeps it.
func (s *sampler) record(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	x := soakSample{T: time.Since(s.st.start).Seconds(), Keys: map[string]int{}, Members: map[string]int64{}, KeyKiB: map[string]float64{}}
	var errs []string
	if s.pid > 0 {
		if p, err := readProc(s.pid); err != nil {
			errs = append(errs, "proc")
		} else {
			x.RSSMiB, x.CPU = float64(p.RSS)/(1<<20), (p.CPU - s.cpu0).Seconds()
		}
		if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.pid)); err == nil {
			x.FDs = len(fds)
		}
	}
	if s.pid > 0 {
		if c, err := gatebotConns(s.pid, s.port, s.fakesPort); err != nil {
			errs = append(errs, "conns")
			s.note("conns: " + err.Error())
		} else {
			x.Conns, x.OutConns, x.Sockets = c.in, c.out, c.all
		}
	}
	if m, err := s.metrics(ctx); err != nil {
		errs = append(errs, "metrics")
		s.note("metrics: " + err.Error())
	} else {
		x.Goroutines, x.HeapMiB = m["go_goroutines"], m["go_memstats_heap_inuse_bytes"]/(1<<20)
	}
	if err := s.redis(ctx, &x); err != nil {
		errs = append(errs, "redis")
		s.note("redis: " + err.Error())
	}
	x.EchoOK, x.EchoFail = s.st.echoOK.Load(), s.st.echoFail.Load()
	x.GatesOK, x.GatesBad = s.st.gatesOK.Load(), s.st.gatesBad.Load()
	x.Err = strings.Join(errs, ",")
	s.st.mu.Lock()
	s.st.samples = append(s.st.samples, x)
	s.st.mu.Unlock()
}

// metrics reads the unlabelled Go runtime gauges from gatebot's /metrics.
func (s *sampler) metrics(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.b.gatebotURL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: HTTP %d", resp.StatusCode)
	}
	return parseGauges(bufio.NewScanner(resp.Body), "go_goroutines", "go_memstats_heap_inuse_bytes")
}

// parseGauges picks the named unlabelled samples out of the Prometheus
// text format.
func parseGauges(sc *bufio.Scanner, names ...string) (map[string]float64, error) {
	out := map[string]float64{}
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || !contains(names, name) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", name, err)
		}
		out[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("/metrics has no %s", n)
		}
	}
	return out, nil
}

// redis reads the server's memory and key count, then counts the run's
// keys by class and the length of each structure.
func (s *sampler) redis(ctx context.Context, x *soakSample) error {
	info, err := s.rdb.Info(ctx, "memory", "keyspace").Result()
	if err != nil {
		return err
	}
	used, keys := parseRedisInfo(info)
	x.RedisMiB, x.RedisKeys = float64(used)/(1<<20), keys
	var structs, measured []string
	iter := s.rdb.Scan(ctx, 0, s.prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		k := strings.TrimPrefix(iter.Val(), s.prefix)
		switch c := keyClass(k); c {
		case "seen":
			x.Keys[c]++
		case "":
			x.Keys["other"]++
			structs = append(structs, k)
			measured = append(measured, k)
		default:
			x.Keys[c]++
			measured = append(measured, k)
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if err := s.memory(ctx, measured, x.KeyKiB); err != nil {
		return err
	}
	return s.lengths(ctx, structs, x.Members)
}

// memory adds each key's MEMORY USAGE (every element counted) to its
// class in into, in KiB. A key gone since the scan counts 0.
func (s *sampler) memory(ctx context.Context, keys []string, into map[string]float64) error {
	cmds := make([]*redis.IntCmd, len(keys))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.MemoryUsage(ctx, s.prefix+k, 0)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	for i, k := range keys {
		c := keyClass(k)
		if c == "" {
			c = "other"
		}
		into[c] += float64(cmds[i].Val()) / 1024
	}
	return nil
}

// lengths stores each structure's length (ZCARD, HLEN, XLEN, LLEN, SCARD;
// 1 for a string) in into.
func (s *sampler) lengths(ctx context.Context, keys []string, into map[string]int64) error {
	if len(keys) == 0 {
		return nil
	}
	types := make([]*redis.StatusCmd, len(keys))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			types[i] = p.Type(ctx, s.prefix+k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	lens := make([]*redis.IntCmd, len(keys))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			switch key := s.prefix + k; types[i].Val() {
			case "zset":
				lens[i] = p.ZCard(ctx, key)
			case "hash":
				lens[i] = p.HLen(ctx, key)
			case "stream":
				lens[i] = p.XLen(ctx, key)
			case "list":
				lens[i] = p.LLen(ctx, key)
			case "set":
				lens[i] = p.SCard(ctx, key)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	for i, k := range keys {
		if lens[i] != nil {
			into[structName(k)] += lens[i].Val()
		} else if types[i].Val() == "string" {
			into[structName(k)]++
		}
	}
	return nil
}

// groupedStructs are structures kept as many keys (layout 3's card
// digests in 1024 buckets, learned dictionaries), sampled as one sum.
var groupedStructs = []string{"ob:cs:", "dict:"}

// structName is the name a structure's length is reported under: its key
// after the prefix, or "<group>*" for a key of a grouped structure.
func structName(k string) string {
	for _, g := range groupedStructs {
		if strings.HasPrefix(k, g) {
			return g + "*"
		}
	}
	return k
}

// parseRedisInfo returns used_memory and the keys of all databases from
// INFO memory and keyspace.
func parseRedisInfo(info string) (used, keys int64) {
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			used, _ = strconv.ParseInt(v, 10, 64)
		}
		if strings.HasPrefix(line, "db") {
			_, rest, _ := strings.Cut(line, ":")
			for _, f := range strings.Split(rest, ",") {
				if v, ok := strings.CutPrefix(f, "keys="); ok {
					n, _ := strconv.ParseInt(v, 10, 64)
					keys += n
				}
			}
		}
	}
	return used, keys
}

// seenBytes estimates the memory of one dedupe marker (MEMORY USAGE of up
// to 32 of the run's seen: keys); 0 if there are none.
func (s *sampler) seenBytes(ctx context.Context) float64 {
	var keys []string
	iter := s.rdb.Scan(ctx, 0, s.prefix+"seen:*", 1000).Iterator()
	for iter.Next(ctx) && len(keys) < 32 {
		keys = append(keys, iter.Val())
	}
	var total, n int64
	for _, k := range keys {
		if v, err := s.rdb.MemoryUsage(ctx, k, 0).Result(); err == nil {
			total += v
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return float64(total) / float64(n)
}

// close saves the last profiles and the marker size, and closes Redis.
func (s *sampler) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if s.b.prof != nil {
		s.profile(ctx, "-end")
	}
	bpk := s.seenBytes(ctx)
	s.st.mu.Lock()
	s.st.seenBytes = bpk
	s.st.mu.Unlock()
	_ = s.rdb.Close()
}

// connCount is gatebot's established TCP connections by kind.
type connCount struct{ in, out, all int }

// gatebotConns counts process pid's established TCP connections: to its
// listen port (in), to the fakes' port (out) and all, matching the socket
// inodes of /proc/<pid>/fd with /proc/net/tcp and tcp6.
func gatebotConns(pid, listen, fakes int) (connCount, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return connCount{}, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if ino, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	var c connCount
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return c, err
		}
		c = c.add(countConns(string(b), inodes, listen, fakes))
	}
	return c, nil
}

func (c connCount) add(d connCount) connCount {
	return connCount{in: c.in + d.in, out: c.out + d.out, all: c.all + d.all}
}

// countConns counts the ESTABLISHED (state 01) lines of a /proc/net/tcp
// table whose socket inode is in inodes: local port listen (in), remote
// port fakes (out), and all of them.
func countConns(table string, inodes map[string]bool, listen, fakes int) connCount {
	in, out := fmt.Sprintf(":%04X", listen), fmt.Sprintf(":%04X", fakes)
	var c connCount
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "01" || !inodes[f[9]] {
			continue
		}
		c.all++
		switch {
		case strings.HasSuffix(f[1], in):
			c.in++
		case strings.HasSuffix(f[2], out):
			c.out++
		}
	}
	return c
}
