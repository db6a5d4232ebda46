package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// --rolling: a rolling upgrade that adds the flow's pipeline. Replica 0
// runs the new config; replicas 1… an older one without deploy-fast.
// Teams' messages (/run) go to replica 0, which knows the pipeline (on an
// old replica /run answers "There is no pipeline", as it would in Teams);
// clicks go round-robin over all, so old replicas decide on gates of a
// pipeline they do not have. What must hold: every approved gate runs
// exactly once (only replica 0 may claim its triggers and polls), ends on
// succeeded, and every replica's /readyz stays 200 while saying that the
// replicas disagree.

// rollingSeeWithin bounds the wait for a replica's /readyz to show the
// others: a little over gatebot's 10 s registry heartbeat.
const rollingSeeWithin = 12 * time.Second

// rollingReport is what --rolling checked.
type rollingReport struct {
	// Readyz is each replica's /readyz answer: status and replicas check.
	Readyz []string `json:"readyz"`
	OK     bool     `json:"ok"`
}

// rollingOmits reports whether replica i's config leaves out the flow's
// pipeline.
func rollingOmits(opt options, i int) bool { return opt.rolling && i > 0 }

// rollingReport asks every live replica's /readyz and judges it.
func (b *bench) rollingReport(ctx context.Context, rep *report) {
	if !b.opt.rolling {
		return
	}
	rr := &rollingReport{OK: true}
	for i, base := range b.teams.routes.bases {
		if b.teams.routes.isDead(i) {
			continue
		}
		// A replica reads the registry every 10 s: one that joined before
		// the others sees them at its next heartbeat.
		code, check, err := readyzReplicas(ctx, base)
		for deadline := time.Now().Add(rollingSeeWithin); err == nil && !strings.Contains(check, "disagree") && time.Now().Before(deadline); {
			time.Sleep(250 * time.Millisecond)
			code, check, err = readyzReplicas(ctx, base)
		}
		line := fmt.Sprintf("replica %d: /readyz %d, replicas: %s", i, code, check)
		if err != nil {
			line = fmt.Sprintf("replica %d: /readyz: %v", i, err)
		}
		if err != nil || code != http.StatusOK || !strings.Contains(check, "disagree") {
			rr.OK = false
		}
		rr.Readyz = append(rr.Readyz, line)
	}
	rep.Rolling = rr
}

// readyzReplicas returns a replica's /readyz status and its replicas check.
func readyzReplicas(ctx context.Context, base string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return 0, "", err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	var body struct {
		Checks map[string]string `json:"checks"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return res.StatusCode, "", fmt.Errorf("readyz body: %w", err)
	}
	return res.StatusCode, body.Checks["replicas"], nil
}
