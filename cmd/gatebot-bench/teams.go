package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/gatebot/gatebot/cmd/gatebot-bench/internal/fakes"
)

// user is a Teams user of a bench conversation.
type user struct{ ID, Name, AAD, UPN string }

// convo is a Teams group chat with a requester and two approvers.
type convo struct {
	ID        string
	Requester user
	Approvers [2]user
}

func newConvo(i int) convo {
	mk := func(role string, r int) user {
		n := fmt.Sprintf("%s%d", role, i)
		return user{
			ID: "29:bench-" + n, Name: "Bench " + n, UPN: n + "@bench.example",
			AAD: fmt.Sprintf("0000be7c-0000-4000-%04x-%012d", r, i),
		}
	}
	return convo{ID: fmt.Sprintf("19:bench-%d@thread.v2", i), Requester: mk("req", 1), Approvers: [2]user{mk("apa", 2), mk("apb", 3)}}
}

// teams sends activities to gatebot as the Teams channel does: signed
// channel tokens, Teams-shaped group-chat activities.
type teams struct {
	routes     *router // gatebot base URLs, one per replica
	serviceURL string
	appID      string
	idp        *fakes.IdP
	client     *http.Client
	seq        atomic.Int64
	// pinMessages sends message activities to replica 0 while it is live
	// (--rolling: only it has the flow's pipeline).
	pinMessages bool
}

func newTeams(routes *router, serviceURL, appID string, idp *fakes.IdP) *teams {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 2048, 2048
	return &teams{routes: routes, serviceURL: serviceURL, appID: appID, idp: idp, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (t *teams) nextID() string {
	return fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), t.seq.Add(1))
}

// activity builds a group-chat activity from one user, as Teams sends it.
func (t *teams) activity(c convo, from user, typ, id string) map[string]any {
	return map[string]any{
		"type": typ, "id": id, "timestamp": time.Now().UTC().Format(time.RFC3339Nano),
		"channelId": "msteams", "serviceUrl": t.serviceURL,
		"from":         map[string]any{"id": from.ID, "name": from.Name, "aadObjectId": from.AAD},
		"recipient":    map[string]any{"id": "28:" + t.appID, "name": "gatebot"},
		"conversation": map[string]any{"id": c.ID, "conversationType": "groupChat", "isGroup": true, "tenantId": tenantID},
		"channelData":  map[string]any{"tenant": map[string]any{"id": tenantID}},
		"locale":       "en-US",
	}
}

// post sends one activity of conversation conv with a fresh channel
// token to the next replica and returns the HTTP status, body and
// round-trip time. A request that failed because its replica was killed
// is sent again, unchanged (same activity id), to another replica, as
// Teams redelivers an activity whose delivery failed.
func (t *teams) post(ctx context.Context, conv string, act map[string]any) (int, []byte, time.Duration, error) {
	b, _ := json.Marshal(act)
	start := time.Now()
	for tries := 1; ; tries++ {
		i, base := t.routes.pick(conv)
		if t.pinMessages && act["type"] == "message" && !t.routes.isDead(0) {
			i, base = 0, t.routes.bases[0]
		}
		status, body, err := t.postTo(ctx, base, b)
		if err != nil && ctx.Err() == nil && t.routes.isDead(i) && tries <= len(t.routes.bases) {
			t.routes.resent.Add(1)
			continue
		}
		return status, body, time.Since(start), err
	}
}

func (t *teams) postTo(ctx context.Context, base string, b []byte) (int, []byte, error) {
	tok, err := t.idp.ChannelToken(t.serviceURL)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/messages", bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, body, err
}

// message sends "@gatebot text" from one user and returns its activity
// id and when it was sent.
func (t *teams) message(ctx context.Context, c convo, from user, text string) (string, time.Time, time.Duration, error) {
	id := t.nextID()
	act := t.activity(c, from, "message", id)
	act["text"] = "<at>gatebot</at> " + text
	act["textFormat"] = "plain"
	act["entities"] = []any{map[string]any{"type": "mention", "text": "<at>gatebot</at>",
		"mentioned": map[string]any{"id": "28:" + t.appID, "name": "gatebot"}}}
	sent := time.Now()
	status, body, rtt, err := t.post(ctx, c.ID, act)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("message turn answered HTTP %d: %.200s", status, body)
	}
	return id, sent, rtt, err
}

// invokeAnswer is the adaptiveCard/action response body.
type invokeAnswer struct {
	StatusCode int             `json:"statusCode"`
	Type       string          `json:"type"`
	Value      json.RawMessage `json:"value"`
}

const cardType = "application/vnd.microsoft.card.adaptive"

// click sends an Action.Execute invoke for verb on gateID's card (activity
// replyTo) with activity id id. ok is true only if the answer is a card
// (HTTP 200, statusCode 200) that counts the clicker among the approvers:
// a refused vote is also answered with a card, carrying a notice.
func (t *teams) click(ctx context.Context, c convo, from user, gateID, verb, replyTo, id string) (time.Duration, bool, error) {
	ans, rtt, err := t.invoke(ctx, c, from, gateID, verb, replyTo, id)
	return rtt, err == nil && ans.names(from), err
}

// invoke sends an Action.Execute invoke and returns its decoded answer;
// an error for a failed request or an answer that is not HTTP 200 with an
// invoke response body.
func (t *teams) invoke(ctx context.Context, c convo, from user, gateID, verb, replyTo, id string) (invokeAnswer, time.Duration, error) {
	act := t.activity(c, from, "invoke", id)
	act["name"] = "adaptiveCard/action"
	act["replyToId"] = replyTo
	act["value"] = map[string]any{
		"action":  map[string]any{"type": "Action.Execute", "verb": verb, "data": map[string]any{"verb": verb, "gateId": gateID}},
		"trigger": "manual",
	}
	var ans invokeAnswer
	status, body, rtt, err := t.post(ctx, c.ID, act)
	if err != nil {
		return ans, rtt, err
	}
	if status != http.StatusOK || json.Unmarshal(body, &ans) != nil {
		return ans, rtt, fmt.Errorf("invoke answered HTTP %d: %.200s", status, body)
	}
	return ans, rtt, nil
}

// names reports whether the answer is a card (statusCode 200) that counts
// u among the approvers: a refused vote is also answered with a card,
// carrying a notice.
func (a invokeAnswer) names(u user) bool {
	return (a.StatusCode == 0 || a.StatusCode == http.StatusOK) && a.Type == cardType && bytes.Contains(a.Value, []byte(u.Name))
}

var gateIDRe = regexp.MustCompile(`"gateId":"(g_[A-Za-z0-9]+)"`)

// gateOf returns the gate id an approval card carries.
func gateOf(body []byte) string {
	if m := gateIDRe.FindSubmatch(body); m != nil {
		return string(m[1])
	}
	return ""
}
