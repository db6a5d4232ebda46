// Package replicas is gatebot's replica registry. Every running gatebot
// publishes who it is under the Redis prefix — its instance name, version,
// deployment (the bot's app id), a fingerprint of its configuration and the
// pipelines it serves — and refreshes it on a heartbeat, so each replica
// can tell:
//
//   - whether the live replicas run different configs or versions, as they
//     do during a rolling upgrade (readiness and a log line say so);
//   - whether any live replica still serves a pipeline, so work for a
//     pipeline no replica knows any more can be failed after a grace
//     period instead of waiting forever;
//   - whether another deployment shares the prefix, which would make the
//     two steal each other's work: the later one refuses to start, or
//     reports itself not ready.
//
// The registry is one Redis hash, P replicas: instance → JSON Info. A
// replica that stops removes its entry; one that dies is dropped once its
// heartbeat is older than Options.TTL.
//
// It must not import net/http serving code, Teams or Bot Framework
// packages, nor gatebot's handlers or engine packages.
package replicas

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Info is what one replica publishes about itself.
type Info struct {
	Instance string `json:"instance"`
	// Deployment tells deployments apart: replicas of one deployment share
	// it (gatebot uses the bot's app id). Replicas of different
	// deployments must not share a Redis prefix.
	Deployment string `json:"deployment"`
	Version    string `json:"version"`
	// Config is the fingerprint of the replica's configuration
	// (Fingerprint), equal on replicas that run the same config.
	Config    string    `json:"config"`
	Pipelines []string  `json:"pipelines"`
	Started   time.Time `json:"started"`
	Seen      time.Time `json:"seen"`
}

// Fingerprint is a short, stable digest of a configuration: the hex of the
// first 6 bytes of the SHA-256 of canonical. Callers pass a rendering with
// secrets left out: the digest is published in Redis and in /readyz.
func Fingerprint(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:6])
}

// Options configure a Registry.
type Options struct {
	Prefix string // key prefix, as the approvals store's
	Self   Info   // Instance is required; Started defaults to now
	// Every is the heartbeat, default 10 s; TTL is how old a heartbeat may
	// be before its replica counts as gone, default 3 × Every.
	Every, TTL time.Duration
	Logger     *slog.Logger
	Now        func() time.Time
}

// ErrForeignDeployment is matched (errors.Is) by Join's refusal when a live
// replica of another deployment uses the prefix.
var ErrForeignDeployment = errors.New("another gatebot deployment uses this Redis prefix")

// Registry publishes this replica and reads the others. Create it with
// New, call Join once at start, Run for the heartbeat and Leave at
// shutdown.
type Registry struct {
	rdb  redis.UniversalClient
	key  string
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	view     View
	reported string // the last disagreement logged, so each is logged once
}

// New validates o and returns a Registry.
func New(rdb redis.UniversalClient, o Options) (*Registry, error) {
	if rdb == nil {
		return nil, errors.New("replicas: a Redis client is required")
	}
	if o.Self.Instance == "" {
		return nil, errors.New("replicas: Self.Instance is required")
	}
	if o.Every <= 0 {
		o.Every = 10 * time.Second
	}
	if o.TTL <= 0 {
		o.TTL = 3 * o.Every
	}
	if o.TTL <= o.Every {
		return nil, fmt.Errorf("replicas: TTL %s must be longer than the heartbeat %s", o.TTL, o.Every)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Self.Started.IsZero() {
		o.Self.Started = o.Now()
	}
	o.Self.Pipelines = slices.Sorted(slices.Values(o.Self.Pipelines))
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Registry{rdb: rdb, key: o.Prefix + "replicas", opts: o, log: log.With("component", "replicas")}, nil
}

// Join publishes this replica, unless a live replica of another deployment
// already uses the prefix: then nothing is written and the error, matching
// ErrForeignDeployment, names that replica.
func (r *Registry) Join(ctx context.Context) error {
	v, err := r.read(ctx)
	if err != nil {
		return err
	}
	if f := v.Foreign(); len(f) > 0 {
		o := f[0]
		return fmt.Errorf("%w: replica %s of deployment %q (version %s) was seen %s ago under %q; give each deployment its own redis.prefix",
			ErrForeignDeployment, o.Instance, o.Deployment, o.Version, r.opts.Now().Sub(o.Seen).Round(time.Second), strings.TrimSuffix(r.key, "replicas"))
	}
	return r.beat(ctx)
}

// Run refreshes this replica's entry every Options.Every and reads the
// others' until ctx ends. Each read is logged when the replicas' configs,
// versions or deployments start or stop disagreeing.
func (r *Registry) Run(ctx context.Context) {
	t := time.NewTicker(r.opts.Every)
	defer t.Stop()
	for {
		if err := r.beat(ctx); err != nil && ctx.Err() == nil {
			r.log.WarnContext(ctx, "replica heartbeat failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Leave removes this replica's entry, so the others stop counting it at
// once rather than after TTL.
func (r *Registry) Leave(ctx context.Context) error {
	if err := r.rdb.HDel(ctx, r.key, r.opts.Self.Instance).Err(); err != nil {
		return fmt.Errorf("replicas: leave: %w", err)
	}
	return nil
}

// View is the last read of the registry. Live holds this replica too.
func (r *Registry) View() View {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.view
}

// beat writes this replica's heartbeat, then reads every entry, drops the
// dead ones and records the view.
func (r *Registry) beat(ctx context.Context) error {
	self := r.opts.Self
	self.Seen = r.opts.Now()
	raw, err := json.Marshal(self)
	if err != nil {
		return err
	}
	if err := r.rdb.HSet(ctx, r.key, self.Instance, raw).Err(); err != nil {
		r.setErr(err)
		return fmt.Errorf("replicas: heartbeat: %w", err)
	}
	v, err := r.read(ctx)
	if err != nil {
		return err
	}
	r.report(ctx, v)
	return nil
}

// read loads every entry, deleting those whose heartbeat is older than
// TTL, and records the view.
func (r *Registry) read(ctx context.Context) (View, error) {
	all, err := r.rdb.HGetAll(ctx, r.key).Result()
	if err != nil {
		r.setErr(err)
		return View{}, fmt.Errorf("replicas: read: %w", err)
	}
	now := r.opts.Now()
	v := View{Self: r.opts.Self, Read: now, TTL: r.opts.TTL}
	var dead []string
	for inst, raw := range all {
		var in Info
		if json.Unmarshal([]byte(raw), &in) != nil || now.Sub(in.Seen) > r.opts.TTL {
			if inst != r.opts.Self.Instance {
				dead = append(dead, inst)
			}
			continue
		}
		v.Live = append(v.Live, in)
	}
	sort.Slice(v.Live, func(i, j int) bool { return v.Live[i].Instance < v.Live[j].Instance })
	if len(dead) > 0 {
		// Any replica may prune; HDEL of a field a replica just revived
		// would only cost it one heartbeat.
		if err := r.rdb.HDel(ctx, r.key, dead...).Err(); err != nil {
			r.log.WarnContext(ctx, "could not drop dead replicas", "err", err)
		}
	}
	r.mu.Lock()
	r.view = v
	r.mu.Unlock()
	return v, nil
}

func (r *Registry) setErr(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.view.Err = err
}

// report logs a change in the replicas' agreement, once per change.
func (r *Registry) report(ctx context.Context, v View) {
	summary := v.Disagreement()
	r.mu.Lock()
	changed := summary != r.reported
	r.reported = summary
	r.mu.Unlock()
	if !changed {
		return
	}
	switch {
	case summary == "":
		r.log.InfoContext(ctx, "replicas agree", "replicas", len(v.Live), "config", v.Self.Config, "version", v.Self.Version)
	case len(v.Foreign()) > 0:
		r.log.ErrorContext(ctx, "another deployment uses this Redis prefix", "replicas", summary)
	default:
		r.log.WarnContext(ctx, "replicas disagree (normal during a rolling upgrade)", "replicas", summary)
	}
}
