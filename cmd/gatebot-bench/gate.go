package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gatebot/gatebot/cmd/gatebot-bench/internal/fakes"
)

// gateResult is what one gate went through, from the driver's side.
type gateResult struct {
	Conversation string `json:"conversation"` // where the card lives
	Pipeline     string `json:"pipeline"`
	Origin       string `json:"origin"` // chat or api
	GateID       string `json:"gate_id,omitempty"`
	CardActivity string `json:"card_activity,omitempty"`
	// Stage is "succeeded" or the step the gate stopped at: open, card,
	// approve, provider, run-card, result.
	Stage    string `json:"stage"`
	Err      string `json:"err,omitempty"`
	Approved bool   `json:"approved"` // both approvers' clicks were answered with success
	Special  string `json:"special,omitempty"`

	OpenToCard        time.Duration   `json:"open_to_card"`
	ClickAnswers      []time.Duration `json:"click_answers"`
	ClickFailures     int             `json:"click_failures"`
	ApproveToProvider time.Duration   `json:"approve_to_provider"`
	ApproveToRunCard  time.Duration   `json:"approve_to_run_card"`
	OpenToResult      time.Duration   `json:"open_to_result"`

	msgID   string // the /run message (chat gates)
	channel string // conversation of the create call (api gates)
}

func (g *gateResult) fail(stage string, err error) *gateResult {
	g.Stage = stage
	if err != nil {
		g.Err = err.Error()
	}
	return g
}

// opened is how a gate's card appeared at the Connector.
type opened struct {
	sent time.Time
	card fakes.Call
	conv convo // where the approvers click
	next int   // index in conv's calls after the card
}

// runChatGate drives one gate as Teams users do: /run, the card, both
// approvers' clicks (each sent twice at once), the provider call, the run
// on the card, the result.
func (b *bench) runChatGate(ctx context.Context, c convo, pipeline string, n int) *gateResult {
	g := b.newGate(c.ID, pipeline, "chat")
	text := fmt.Sprintf("/run %s version=1.%d.%d", pipeline, n/1000, n%1000)
	msgID, sent, _, err := b.teams.message(ctx, c, c.Requester, text)
	if err != nil {
		return g.fail("open", err)
	}
	g.msgID = msgID
	sctx, cancel := context.WithTimeout(ctx, b.opt.stepTimeout)
	defer cancel()
	card, next, err := b.conn.Wait(sctx, c.ID, 0, func(call fakes.Call) bool {
		return call.OK() && call.Op != fakes.OpUpdate && call.ReplyToID == msgID
	})
	if err != nil {
		return g.fail("card", err)
	}
	if gateOf(card.Body) == "" {
		return g.fail("card", fmt.Errorf("the answer to /run carries no gate: %.200s", card.Body))
	}
	return b.approveAndFollow(ctx, g, opened{sent: sent, card: card, conv: c, next: next})
}

// runAPIGate opens a gate with POST /api/v1/gates and follows it like a
// chat gate; the card is a new thread in the bench channel.
func (b *bench) runAPIGate(ctx context.Context, approvers convo, n int) *gateResult {
	g := b.newGate(channelConversation, pipelineFast, "api")
	g.channel = channelConversation
	body, _ := json.Marshal(map[string]any{
		"pipeline": pipelineFast, "inputs": map[string]any{"version": fmt.Sprintf("2.%d.%d", n/1000, n%1000)},
		"message": "gatebot-bench api gate", "requester": "gatebot-bench",
	})
	_, base := b.teams.routes.pick("api")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/gates", bytes.NewReader(body))
	if err != nil {
		return g.fail("open", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+b.apiToken)
	req.Header.Set("Idempotency-Key", b.teams.nextID())
	sent := time.Now()
	resp, err := b.teams.client.Do(req)
	if err != nil {
		return g.fail("open", err)
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	var created struct {
		ID string `json:"id"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(raw, &created) != nil || created.ID == "" {
		return g.fail("open", fmt.Errorf("POST /api/v1/gates answered HTTP %d: %.200s", resp.StatusCode, raw))
	}
	sctx, cancel := context.WithTimeout(ctx, b.opt.stepTimeout)
	defer cancel()
	card, _, err := b.conn.Wait(sctx, channelConversation, 0, func(call fakes.Call) bool {
		return call.OK() && call.Op == fakes.OpCreate && gateOf(call.Body) == created.ID
	})
	if err != nil {
		return g.fail("card", err)
	}
	thread := approvers
	thread.ID = channelConversation + ";messageid=" + card.ActivityID
	g.Conversation = thread.ID
	return b.approveAndFollow(ctx, g, opened{sent: sent, card: card, conv: thread})
}

// approveAndFollow does the clicks and waits for the provider call, the
// run on the card and the result.
func (b *bench) approveAndFollow(ctx context.Context, g *gateResult, o opened) *gateResult {
	approveAt, ok := b.approveBoth(ctx, g, o)
	if !ok {
		return g.fail("approve", errors.New("a click was not answered with success"))
	}
	return b.follow(ctx, g, o, approveAt)
}

// approveBoth notes the card and does both approvers' clicks; it returns
// when the quorum's clicks were sent and whether all were answered with
// success.
func (b *bench) approveBoth(ctx context.Context, g *gateResult, o opened) (time.Time, bool) {
	g.GateID, g.CardActivity = gateOf(o.card.Body), o.card.ActivityID
	g.OpenToCard = o.card.At.Sub(o.sent)
	b.think(ctx)

	// Approver A's click arrives twice with one activity id (a Teams
	// redelivery); approver B double-clicks (two ids). B's vote completes
	// the quorum.
	okA := b.clickTwice(ctx, g, o.conv, o.conv.Approvers[0], true)
	b.think(ctx)
	approveAt := time.Now()
	okB := b.clickTwice(ctx, g, o.conv, o.conv.Approvers[1], false)
	g.Approved = okA && okB
	return approveAt, g.Approved
}

// follow waits for an approved gate's provider call, the run on its card
// and the result; approveAt is when the quorum's click was sent.
func (b *bench) follow(ctx context.Context, g *gateResult, o opened, approveAt time.Time) *gateResult {
	sctx, cancel := context.WithTimeout(ctx, b.opt.stepTimeout)
	defer cancel()
	trig, err := b.prov.WaitTrigger(sctx, g.GateID)
	if err != nil {
		return g.fail("provider", err)
	}
	g.ApproveToProvider = trig.At.Sub(approveAt)
	runURL := []byte(b.prov.RunURL(g.GateID))
	shown, next, err := b.conn.Wait(sctx, o.conv.ID, o.next, func(call fakes.Call) bool {
		return call.OK() && call.ActivityID == g.CardActivity && bytes.Contains(call.Body, runURL)
	})
	if err != nil {
		return g.fail("run-card", err)
	}
	g.ApproveToRunCard = shown.At.Sub(approveAt)
	done, _, err := b.conn.Wait(sctx, o.conv.ID, next-1, func(call fakes.Call) bool {
		return call.OK() && call.ActivityID == g.CardActivity && bytes.Contains(call.Body, runURL) &&
			strings.Contains(strings.ToLower(string(call.Body)), "succeeded")
	})
	if err != nil {
		return g.fail("result", err)
	}
	g.OpenToResult = done.At.Sub(o.sent)
	g.Stage = "succeeded"
	return g
}

// clickTwice sends two concurrent approve invokes from u; true if at
// least one was answered with success and none failed.
func (b *bench) clickTwice(ctx context.Context, g *gateResult, c convo, u user, sameID bool) bool {
	ids := [2]string{b.teams.nextID(), ""}
	ids[1] = ids[0]
	if !sameID {
		ids[1] = b.teams.nextID()
	}
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		oks int
	)
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rtt, ok, err := b.teams.click(ctx, c, u, g.GateID, "approve", g.CardActivity, id)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				g.ClickAnswers = append(g.ClickAnswers, rtt)
			}
			if ok {
				oks++
			} else {
				g.ClickFailures++
			}
		}()
	}
	wg.Wait()
	return oks == 2
}

// think pauses for the configured think time.
func (b *bench) think(ctx context.Context) {
	if b.opt.think <= 0 {
		return
	}
	t := time.NewTimer(b.opt.think)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (b *bench) newGate(conv, pipeline, origin string) *gateResult {
	g := &gateResult{Conversation: conv, Pipeline: pipeline, Origin: origin}
	b.mu.Lock()
	b.gates = append(b.gates, g)
	b.mu.Unlock()
	return g
}
