package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gatebot/gatebot/replicas"
)

const (
	// readyPingTimeout bounds the Redis PING of a readiness check.
	readyPingTimeout = time.Second
	// readyCacheFor is how long one Redis check answers probes: kubelets,
	// load balancers and monitors may probe every replica many times a
	// second, and Redis should not see each of them.
	readyCacheFor = time.Second
)

// KeyLoader is implemented by an Authenticator that can say whether it has
// signing keys (*bot.Authenticator does). With one, /readyz fails until
// keys are loaded, since every Teams request would fail before.
type KeyLoader interface {
	KeysLoaded() bool
}

// ReplicaView is the replica registry as readiness sees it.
// *replicas.Registry implements it.
type ReplicaView interface {
	View() replicas.View
}

// readiness caches the result of the Redis check.
type readiness struct {
	mu      sync.Mutex
	checked time.Time
	err     error
}

// redis returns the Redis check's result, at most readyCacheFor old. The
// mutex is held during the PING so concurrent probes share one.
func (rd *readiness) redis(ctx context.Context, now func() time.Time, ping func(context.Context) error) error {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if !rd.checked.IsZero() && now().Sub(rd.checked) < readyCacheFor {
		return rd.err
	}
	ctx, cancel := context.WithTimeout(ctx, readyPingTimeout)
	defer cancel()
	rd.err = ping(ctx)
	rd.checked = now()
	return rd.err
}

// readyReport is the /readyz body: each check and "ok" or why not. The
// reasons are fixed texts: the error itself goes to the log only.
type readyReport struct {
	Status string            `json:"status"` // ready or unavailable
	Failed []string          `json:"failed,omitempty"`
	Checks map[string]string `json:"checks"`
}

// handleReady answers the readiness probe: 200 when Redis answers a PING
// (within readyPingTimeout, cached for readyCacheFor), the Bot Framework
// signing keys are loaded (with inbound auth on) and the server is not
// shutting down; else 503 naming the failed checks.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	rep := readyReport{Status: "ready", Checks: map[string]string{}}
	fail := func(check, why string) {
		rep.Failed = append(rep.Failed, check)
		rep.Checks[check] = why
	}
	if err := s.ready.redis(r.Context(), time.Now, s.opt.Store.Ping); err != nil {
		loggerFrom(r.Context()).Warn("not ready: redis", "err", err)
		fail("redis", "no answer to PING within 1s")
	} else {
		rep.Checks["redis"] = "ok"
	}
	if kl, ok := s.opt.Auth.(KeyLoader); ok {
		if kl.KeysLoaded() {
			rep.Checks["signing_keys"] = "ok"
		} else {
			fail("signing_keys", "Bot Framework signing keys not loaded yet")
		}
	}
	s.readyReplicas(rep.Checks, fail)
	if s.draining.Load() {
		fail("shutdown", "shutting down")
	} else {
		rep.Checks["shutdown"] = "ok"
	}
	status := http.StatusOK
	if len(rep.Failed) > 0 {
		rep.Status = "unavailable"
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(rep)
}

// readyReplicas reports the replicas' agreement. Different configs or
// versions are normal during a rolling upgrade and keep the replica ready
// (failing them would stall the rollout); a deployment that joined a
// prefix another one was using first is not ready, so it gets no traffic.
func (s *Server) readyReplicas(checks map[string]string, fail func(check, why string)) {
	if s.opt.Replicas == nil {
		return
	}
	v := s.opt.Replicas.View()
	switch d := v.Disagreement(); {
	case v.Yields():
		fail("replicas", "another gatebot deployment uses this Redis prefix ("+d+"); give each deployment its own redis.prefix")
	case v.Read.IsZero():
		checks["replicas"] = "registry not read yet"
	case d != "":
		checks["replicas"] = fmt.Sprintf("%d live replicas disagree (normal during a rolling upgrade): %s", len(v.Live), d)
	default:
		checks["replicas"] = fmt.Sprintf("ok: %d live, version %s, config %s", len(v.Live), v.Self.Version, v.Self.Config)
	}
}

// Drain marks the server as shutting down: /readyz answers 503 from now
// on, so load balancers stop sending new requests while in-flight ones
// finish. Call it when shutdown begins, before http.Server.Shutdown.
func (s *Server) Drain() { s.draining.Store(true) }
