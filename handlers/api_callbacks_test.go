package handlers_test

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatebot/gatebot/apitoken"
	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/pipelines"
)

func TestAPIEndToEnd(t *testing.T) {
	for name, rdb := range redisClients(t) {
		t.Run(name, func(t *testing.T) {
			e := newAPIEnv(t, rdb, apiEnvOptions{})
			e.receiver.secret = e.secret
			e.receiver.fail = 1 // the first delivery fails and is retried
			hook := e.receiver.srv.URL + "/gatebot?tenant=acme"

			// API call → card posted to the configured channel.
			resp, raw := e.api("POST", "/api/v1/gates", e.tok["ci-prod"], map[string]any{
				"pipeline": "deploy-api", "inputs": map[string]any{"version": "1.4.2"}, "message": "release 1.4.2", "callback_url": hook,
			}, map[string]string{"Idempotency-Key": "e2e-" + name})
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("create: %d %s", resp.StatusCode, raw)
			}
			id := decode(t, raw)["id"].(string)
			c := e.lastCreate()

			// Approve via an authenticated invoke.
			card := invokeCardText(t, e.clickIn(channelThread(c.ActID), megan, id, "approve", "", c.ActID))
			if !strings.Contains(card, "Approved by Megan Bowen") {
				t.Errorf("invoke answer: %s", card)
			}
			e.conn.waitFor("the run shown as running", func(_, updates []recorded) bool {
				return len(updates) > 0 && strings.Contains(strings.ToLower(updates[len(updates)-1].Raw), "running")
			})
			e.prov.setStatus(pipelines.StatusSucceeded)

			// Callbacks arrive, signed, up to the final state.
			ds := e.receiver.waitFor("the succeeded callback", func(ds []delivery) bool {
				return slices.Contains(acceptedTypes(ds), "gate.succeeded")
			})
			if n := e.prov.calls(id); n != 1 {
				t.Fatalf("provider called %d times, want 1", n)
			}
			ids := map[string]string{} // webhook-id → type
			for _, d := range ds {
				if d.Payload.Data.ID != id {
					t.Errorf("callback for gate %q", d.Payload.Data.ID)
				}
				wid := d.Header.Get("webhook-id")
				if prev, ok := ids[wid]; ok && prev != d.Payload.Type {
					t.Errorf("webhook-id %s names both %s and %s", wid, prev, d.Payload.Type)
				}
				ids[wid] = d.Payload.Type
			}
			// Deliveries of different changes interleave; the retry of the
			// failed first one must carry its id and body.
			retried := false
			for _, d := range ds[1:] {
				if d.Header.Get("webhook-id") == ds[0].Header.Get("webhook-id") && bytes.Equal(ds[0].Body, d.Body) {
					retried = true
				}
			}
			if ds[0].Status != http.StatusInternalServerError || !retried {
				t.Errorf("the failed first delivery (%d, %s) was not retried with the same id and body", ds[0].Status, ds[0].Header.Get("webhook-id"))
			}
			acc := acceptedTypes(ds)
			for _, want := range []string{"gate.running", "gate.succeeded"} {
				if !slices.Contains(acc, want) {
					t.Errorf("no %s callback; got %v", want, acc)
				}
			}
			if slices.Contains(acc, "gate.pending") {
				t.Errorf("pending was sent: %v", acc)
			}

			// GET shows the final state.
			resp, raw = e.api("GET", "/api/v1/gates/"+id, e.tok["ci-prod"], nil, nil)
			g := decode(t, raw)
			if g["state"] != "succeeded" || g["run"].(map[string]any)["id"] != "run-"+id {
				t.Errorf("final GET: %s", raw)
			}
			if votes := g["votes"].([]any); len(votes) != 1 || votes[0].(map[string]any)["by"].(map[string]any)["name"] != "Megan Bowen" {
				t.Errorf("votes: %v", g["votes"])
			}
		})
	}
}

func TestAPIRejectedCallbackBySweep(t *testing.T) {
	// A rejection made in Teams reaches the caller too: the sweep re-reads
	// watched gates whatever path changed them.
	e := newAPIEnv(t, redisClients(t)["miniredis"], apiEnvOptions{})
	e.receiver.secret = e.secret
	resp, raw := e.api("POST", "/api/v1/gates", e.tok["ci-prod"], map[string]any{
		"pipeline": "deploy-api", "inputs": map[string]any{"version": "1.4.2"}, "callback_url": e.receiver.srv.URL + "/hook",
	}, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, raw)
	}
	id := decode(t, raw)["id"].(string)
	invokeCardText(t, e.clickIn(channelThread(e.lastCreate().ActID), megan, id, "reject", "not today", e.lastCreate().ActID))
	ds := e.receiver.waitFor("the rejected callback", func(ds []delivery) bool { return slices.Contains(acceptedTypes(ds), "gate.rejected") })
	last := ds[len(ds)-1].Payload
	if last.Data.State != "rejected" || last.Data.Reason != "not today" || last.Data.DecidedBy == nil || last.Data.DecidedBy.Name != "Megan Bowen" {
		t.Errorf("rejected payload: %+v", last.Data)
	}
	time.Sleep(500 * time.Millisecond) // more sweeps: nothing is sent twice
	if n := len(e.receiver.deliveries()); n != 1 {
		t.Errorf("%d deliveries, want 1", n)
	}
}

// A callback URL may carry a secret in its query, so only the token that
// created the gate is shown it; other readers of the pipeline are not.
func TestAPICallbackURLOnlyForCreator(t *testing.T) {
	e := newAPIEnv(t, redisClients(t)["miniredis"], apiEnvOptions{})
	hook := e.receiver.srv.URL + "/hook?token=s3cr3t"
	resp, raw := e.api("POST", "/api/v1/gates", e.tok["ci-prod"], map[string]any{
		"pipeline": "deploy-api", "inputs": map[string]any{"version": "1.4.2"}, "callback_url": hook,
	}, nil)
	if resp.StatusCode != http.StatusCreated || decode(t, raw)["callback_url"] != hook {
		t.Fatalf("create: %d %s", resp.StatusCode, raw)
	}
	id := decode(t, raw)["id"].(string)
	views := map[string]string{
		"creator GET":      "ci-prod GET /api/v1/gates/" + id,
		"creator list":     "ci-prod GET /api/v1/gates?pipeline=deploy-api",
		"reader GET":       "reader GET /api/v1/gates/" + id,
		"reader list":      "reader GET /api/v1/gates",
		"other writer GET": "both GET /api/v1/gates/" + id,
		"other cancel":     "both DELETE /api/v1/gates/" + id,
	}
	for _, name := range []string{"creator GET", "creator list", "reader GET", "reader list", "other writer GET", "other cancel"} {
		f := strings.Fields(views[name])
		resp, raw := e.api(f[1], f[2], e.tok[f[0]], nil, nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), id) {
			t.Fatalf("%s: %d %s", name, resp.StatusCode, raw)
		}
		shown := strings.Contains(string(raw), "s3cr3t")
		if want := strings.HasPrefix(name, "creator"); shown != want {
			t.Errorf("%s: callback_url shown = %v, want %v: %s", name, shown, want, raw)
		}
	}
}

// TestAPIOwnerMayNotApprove: a token with an owner opens a gate for a
// pipeline without self-approval; the owner's click in Teams is refused,
// someone else's runs it.
func TestAPIOwnerMayNotApprove(t *testing.T) {
	tests := []struct {
		name, owner string
		wantUPN     string
		lookups     bool // the owner is known by UPN only: their UPN must be looked up
	}{
		{name: "upn", owner: "Megan.Bowen@example.com", wantUPN: "Megan.Bowen@example.com", lookups: true},
		{name: "aad", owner: "aad:" + megan.aad},
	}
	for name, rdb := range redisClients(t) {
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				e := newAPIEnv(t, rdb, apiEnvOptions{})
				sec, _, err := e.tokens.Create(context.Background(), apitoken.CreateRequest{Name: "megan-ci",
					Scopes: []apitoken.Scope{apitoken.ScopeWrite, apitoken.ScopeRead}, Pipelines: []string{"deploy-api"}, Owner: tt.owner})
				if err != nil {
					t.Fatal(err)
				}
				resp, raw := e.api("POST", "/api/v1/gates", sec.Reveal(), map[string]any{
					"pipeline": "deploy-api", "inputs": map[string]any{"version": "1.4.2"}, "requester": "Release train",
				}, nil)
				if resp.StatusCode != http.StatusCreated {
					t.Fatalf("create: %d %s", resp.StatusCode, raw)
				}
				g := decode(t, raw)
				id := g["id"].(string)
				rq := g["requester"].(map[string]any)
				wantUPN := any(nil)
				if tt.wantUPN != "" {
					wantUPN = tt.wantUPN
				}
				if rq["name"] != "Release train" || rq["upn"] != wantUPN {
					t.Errorf("requester: %v", rq)
				}
				actID := e.lastCreate().ActID

				self := invokeCardText(t, e.clickIn(channelThread(actID), megan, id, "approve", "", actID))
				if !strings.Contains(self, "someone else has to approve") {
					t.Errorf("the owner's approval should be refused as self-approval: %s", self)
				}
				if got := e.lookups.Load() > 0; got != tt.lookups {
					t.Errorf("member lookups: %d, want some: %v", e.lookups.Load(), tt.lookups)
				}
				if n := e.prov.calls(id); n != 0 {
					t.Fatalf("provider called %d times after the owner's click", n)
				}
				if st, err := e.store.Get(context.Background(), id); err != nil || st.State != approvals.StatePending || len(st.Votes) != 0 {
					t.Fatalf("after the owner's click: %+v %v", st, err)
				}

				card := invokeCardText(t, e.clickIn(channelThread(actID), alex, id, "approve", "", actID))
				if !strings.Contains(card, "Approved by Alex Wilber") {
					t.Errorf("another user's approval: %s", card)
				}
				e.conn.waitFor("the run shown as running", func(_, updates []recorded) bool {
					return len(updates) > 0 && strings.Contains(strings.ToLower(updates[len(updates)-1].Raw), "running")
				})
				if n := e.prov.calls(id); n != 1 {
					t.Fatalf("provider called %d times, want 1", n)
				}
			})
		}
	}
}
