package handlers_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
	"github.com/gatebot/gatebot/handlers"
	"github.com/gatebot/gatebot/pipelines"
)

var dave = user{"29:dave", "Dave Diaz", "00000000-0000-0000-0000-0000000000d4"}

// Conversations of the command tests, all in tenant-1.
var (
	groupChat = map[string]any{"conversation": map[string]any{"id": "19:group-1@thread.v2", "conversationType": "groupChat",
		"isGroup": true, "tenantId": "tenant-1"}}
	opsChannel = inChannel("19:ops@thread.tacv2", "ops", "tenant-1")
)

// personalOf is u's personal chat with the bot.
func personalOf(u user) map[string]any {
	return map[string]any{"conversation": map[string]any{"id": "personal-" + u.id, "conversationType": "personal", "tenantId": "tenant-1"}}
}

// mention is a channel message addressed to the bot, as Teams sends it:
// the mention in the text and an entity naming the bot.
func mention(where map[string]any, text string) map[string]any {
	out := map[string]any{"text": "<at>gatebot</at> " + text, "entities": []any{map[string]any{
		"type": "mention", "text": "<at>gatebot</at>", "mentioned": map[string]any{"id": "28:gatebot", "name": "gatebot"}}}}
	for k, v := range where {
		out[k] = v
	}
	return out
}

// reply is what gatebot posted: the message text, or every string in the
// card with the markdown escapes of user text taken out.
type reply struct {
	conversation string
	text         string
}

// ask sends text from where (nil: the personal chat of the harness) and
// returns gatebot's next post. extra fields, when given, replace "text".
func (e *testEnv) ask(where map[string]any, from user, text string) reply {
	e.t.Helper()
	e.conn.mu.Lock()
	n := len(e.conn.posts)
	e.conn.mu.Unlock()
	extra := map[string]any{"text": text}
	for k, v := range where {
		extra[k] = v
	}
	if resp, body := e.post(e.activity("message", from, extra)); resp.StatusCode != http.StatusOK {
		e.t.Fatalf("%q: %d %s", text, resp.StatusCode, body)
	}
	e.conn.waitFor("a reply to "+text, func(posts, _ []recorded) bool { return len(posts) > n })
	e.conn.mu.Lock()
	p := e.conn.posts[n]
	e.conn.mu.Unlock()
	var parts []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			parts = append(parts, v)
		case []any:
			for _, x := range v {
				walk(x)
			}
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	if t, ok := p.Activity["text"].(string); ok {
		parts = append(parts, t)
	}
	walk(p.Activity["attachments"])
	return reply{conversation: p.Conversation, text: strings.NewReplacer(`\_`, `_`, `\*`, `*`).Replace(strings.Join(parts, "\n"))}
}

// openIn runs the demo pipeline from where and returns the new gate's id.
func (e *testEnv) openIn(where map[string]any, from user, version string) string {
	e.t.Helper()
	r := e.ask(where, from, "/run demo version="+version)
	m := regexp.MustCompile(`(g_[a-z0-9]{20})`).FindStringSubmatch(r.text)
	if m == nil {
		e.t.Fatalf("run from %v: no gate card: %s", where, r.text)
	}
	return m[1]
}

func short(id string) string { return id[:10] }

func wantIn(t *testing.T, what string, r reply, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(r.text, w) {
			t.Errorf("%s: answer lacks %q:\n%s", what, w, r.text)
		}
	}
}

func wantNot(t *testing.T, what string, r reply, not ...string) {
	t.Helper()
	for _, w := range not {
		if strings.Contains(r.text, w) {
			t.Errorf("%s: answer must not contain %q:\n%s", what, w, r.text)
		}
	}
}

// approverPolicy lets Megan (by object id) approve, nobody else.
var approverPolicy = approvals.Policy{Required: 1, Approvers: []string{"aad:" + megan.aad}, Timeout: time.Hour}

func TestChatPending(t *testing.T) {
	for name, rdb := range redisClients(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, rdb, approverPolicy)
			inGroup := e.openIn(groupChat, alex, "1.0.1")
			inChan := e.openIn(opsChannel, alex, "1.0.2")
			inAlex := e.openIn(personalOf(alex), alex, "1.0.3")

			r := e.ask(groupChat, dave, "pending")
			wantIn(t, "pending in the group chat", r, "Open gates (1)", short(inGroup), "**demo**", "**Approval needed** · Alex Wilber · ")
			wantNot(t, "pending in the group chat", r, short(inChan), short(inAlex))

			// In a group chat, even an approver sees only the group's gates:
			// everyone there reads the answer.
			r = e.ask(groupChat, megan, "pending")
			wantIn(t, "an approver in the group chat", r, "Open gates (1)", short(inGroup))
			wantNot(t, "an approver in the group chat", r, short(inChan), short(inAlex))

			// Alex is no approver: his personal chat lists what was posted there.
			r = e.ask(personalOf(alex), alex, "/pending")
			wantIn(t, "Alex's personal chat", r, "Open gates (1)", short(inAlex))
			wantNot(t, "Alex's personal chat", r, short(inGroup), short(inChan))

			// Megan may approve all three: her personal chat lists them,
			// newest first, though none was posted there.
			r = e.ask(personalOf(megan), megan, "pending")
			wantIn(t, "Megan's personal chat", r, "Open gates (3)")
			if a, b, c := strings.Index(r.text, short(inAlex)), strings.Index(r.text, short(inChan)), strings.Index(r.text, short(inGroup)); !(a >= 0 && a < b && b < c) {
				t.Errorf("not newest first: %s", r.text)
			}
			// Dave may approve nothing and has no gate in his chat.
			wantIn(t, "Dave's personal chat", e.ask(personalOf(dave), dave, "pending"), "No open gates")

			// Once approved, the group's gate is still open (running) in the
			// group chat, and no longer waits for Megan.
			e.clickIn(groupChat["conversation"].(map[string]any), megan, inGroup, "approve", "", "")
			waitState(t, e, inGroup, approvals.StateRunning)
			wantIn(t, "after the approval", e.ask(groupChat, dave, "pending"), short(inGroup), "**Queued** · Alex Wilber")
			r = e.ask(personalOf(megan), megan, "pending")
			wantIn(t, "Megan after approving", r, "Open gates (2)")
			wantNot(t, "Megan after approving", r, short(inGroup))

			// A channel asks by @mention: only the channel's gate.
			r = e.ask(mention(opsChannel, "pending"), dave, "")
			wantIn(t, "pending by @mention", r, "Open gates (1)", short(inChan))
		})
	}
}

func waitState(t *testing.T, e *testEnv, id string, want approvals.State) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g, err := e.store.Get(context.Background(), id)
		if err == nil && g.State == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gate %s: state %v (err %v), want %s", id, g, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestChatStatus(t *testing.T) {
	for name, rdb := range redisClients(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, rdb, approverPolicy)
			id := e.openIn(groupChat, alex, "1.1.0")
			chanID := e.openIn(opsChannel, alex, "1.1.1")
			// Gates whose ids share a prefix: two here, one elsewhere.
			here := []string{bot.ConversationKey("19:group-1@thread.v2")}
			for _, g := range []struct {
				id    string
				convs []string
			}{
				{"g_twin2345aaaaaaaaaaaaaa", here},
				{"g_twin2345bbbbbbbbbbbbbb", here},
				{"g_solo2345aaaaaaaaaaaaaa", here},
				{"g_solo2345bbbbbbbbbbbbbb", []string{"19:elsewhere@thread.v2"}},
				{"g_away2345aaaaaaaaaaaaaa", []string{"19:elsewhere@thread.v2"}},
				{"g_away2345bbbbbbbbbbbbbb", []string{"19:elsewhere@thread.v2"}},
			} {
				if _, _, err := e.store.Create(context.Background(), &approvals.Gate{ID: g.id, Pipeline: "demo",
					Requester: approvals.Person{ID: alex.id, AADObjectID: alex.aad, Name: alex.name}, Policy: approverPolicy,
					Tenant: "tenant-1", Conversations: g.convs}, ""); err != nil {
					t.Fatal(err)
				}
			}
			cases := []struct {
				name  string
				where map[string]any
				from  user
				text  string
				want  []string
				not   []string
			}{
				{"short id", groupChat, dave, "status " + short(id), []string{id, "version", "1.1.0"}, []string{"another conversation"}},
				{"full id with a slash", groupChat, dave, "/status " + id, []string{id, "1.1.0"}, nil},
				{"eight characters alone", groupChat, dave, "status " + id[2:10], []string{id, "1.1.0"}, nil},
				{"by @mention in the channel", mention(opsChannel, "status "+short(chanID)), dave, "", []string{chanID, "1.1.1"}, nil},
				{"another conversation", opsChannel, dave, "status " + short(id), []string{"not in this conversation"}, []string{"1.1.0"}},
				{"an approver in another group", opsChannel, megan, "status " + short(id), []string{"not in this conversation"}, []string{"1.1.0"}},
				{"an approver's personal chat", personalOf(megan), megan, "status " + short(id), []string{id, "1.1.0", "another conversation"}, nil},
				{"a non-approver's personal chat", personalOf(dave), dave, "status " + short(id), []string{"not in this conversation"}, []string{"1.1.0"}},
				{"unknown id", groupChat, dave, "status g_zzzzzzzz", []string{`No approval gate has the id "g_zzzzzzzz"`}, nil},
				{"too short", groupChat, dave, "status g_abc", []string{"at least 8 characters"}, nil},
				{"no id", groupChat, dave, "status", []string{"Usage: status <gate-id>"}, nil},
				{"ambiguous here", groupChat, dave, "status g_twin2345", []string{"More than one gate here starts with g_twin2345",
					"g_twin2345aaaaaaaaaaaaaa", "g_twin2345bbbbbbbbbbbbbb"}, nil},
				{"ambiguous, one here", groupChat, dave, "status solo2345", []string{"g_solo2345aaaaaaaaaaaaaa"}, []string{"g_solo2345bbbb"}},
				{"ambiguous, none here", groupChat, dave, "status away2345", []string{"not in this conversation"}, []string{"g_away2345a", "g_away2345b"}},
			}
			for _, c := range cases {
				r := e.ask(c.where, c.from, c.text)
				wantIn(t, c.name, r, c.want...)
				wantNot(t, c.name, r, c.not...)
			}
			if n := e.h.Refusals().Conversation.Load(); n != 4 {
				t.Errorf("conversation refusals = %d, want 4", n)
			}
		})
	}
}

func TestChatCancel(t *testing.T) {
	for name, rdb := range redisClients(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, rdb, approverPolicy)
			ctx := context.Background()
			id := e.openIn(groupChat, alex, "1.2.0")

			wantIn(t, "a bystander", e.ask(groupChat, dave, "cancel "+short(id)), "Only the requester or an approver may cancel this.")
			// Megan may manage it, but not from a chat its card is not in.
			wantIn(t, "another conversation", e.ask(personalOf(megan), megan, "cancel "+short(id)), "not in this conversation")
			wantIn(t, "no id", e.ask(groupChat, alex, "cancel"), "Usage: cancel <gate-id>")
			if g, _ := e.store.Get(ctx, id); g.State != approvals.StatePending {
				t.Fatalf("a refused cancel changed the gate: %s", g.State)
			}

			r := e.ask(mention(groupChat, `cancel `+short(id)+` wrong "release" train`), alex, "")
			wantIn(t, "the requester", r, "Cancelled "+short(id)+" (demo).")
			g, err := e.store.Get(ctx, id)
			if err != nil || g.State != approvals.StateCancelled || g.Reason != "wrong release train" || g.DecidedBy == nil || g.DecidedBy.ID != alex.id {
				t.Fatalf("cancelled gate = %+v, %v", g, err)
			}
			entries, err := e.store.Audit(ctx, approvals.AuditQuery{})
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, a := range entries {
				found = found || (a.GateID == id && a.Event == "cancelled" && a.Reason == "wrong release train")
			}
			if !found {
				t.Errorf("no audit entry for the cancel with its reason: %+v", entries)
			}
			deadline := time.Now().Add(5 * time.Second)
			for len(e.prov.rejections()) == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if got := e.prov.rejections(); len(got) != 1 || !strings.Contains(got[0], "cancelled by Alex Wilber") {
				t.Errorf("rejections relayed = %q", got)
			}
			wantIn(t, "again", e.ask(groupChat, alex, "/cancel "+id), "can no longer be cancelled")

			// A running gate whose provider cannot cancel says so.
			run := e.openIn(groupChat, alex, "1.2.1")
			e.clickIn(groupChat["conversation"].(map[string]any), megan, run, "approve", "", "")
			waitState(t, e, run, approvals.StateRunning)
			wantIn(t, "running", e.ask(groupChat, megan, "cancel "+run[2:10]), "cannot be cancelled from Teams")
		})
	}
}

func TestChatUnknownCommands(t *testing.T) {
	e := newEnv(t, redisClients(t)["miniredis"], approverPolicy)
	cases := []struct{ text, want string }{
		{"pnding", `I don't know the command "pnding". Did you mean pending?`},
		{"/stauts g_abcdefgh", "Did you mean status?"},
		{"rn demo version=1.2.3", "Did you mean run?"},
		{"/cancle g_abcdefgh", "Did you mean cancel?"},
		{"pipelnes", "Did you mean pipelines?"},
		{"frobnicate", `I don't know the command "frobnicate". Try /run`},
	}
	for _, c := range cases {
		r := e.ask(groupChat, alex, c.text)
		wantIn(t, c.text, r, c.want)
	}
	r := e.ask(mention(opsChannel, "pendng"), alex, "")
	wantIn(t, "by @mention", r, "Did you mean pending?")
}

// cancelingProvider is the fake provider with Cancel, recording the runs
// it was asked to stop.
type cancelingProvider struct {
	*fakeProvider
	mu        sync.Mutex
	cancelled []string
}

func (p *cancelingProvider) Cancel(ctx context.Context, run pipelines.Run) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cancelled = append(p.cancelled, run.ID)
	return nil
}

// TestChatCancelRunning: cancelling a running gate asks the provider to
// stop the run and records who asked and why; the gate stays running
// until polling sees the run end.
func TestChatCancelRunning(t *testing.T) {
	for name, rdb := range redisClients(t) {
		t.Run(name, func(t *testing.T) {
			cp := &cancelingProvider{}
			e := newEnvWith(t, rdb, approverPolicy, envOptions{mod: func(o *handlers.Options) {
				cp.fakeProvider = o.Pipelines["demo"].Provider.(*fakeProvider)
				o.Pipelines["demo"].Provider = cp
			}})
			id := e.openIn(groupChat, alex, "1.3.0")
			e.clickIn(groupChat["conversation"].(map[string]any), megan, id, "approve", "", "")
			waitState(t, e, id, approvals.StateRunning)

			r := e.ask(groupChat, megan, "cancel "+short(id)+" stop it")
			wantIn(t, "cancel a run", r, "Cancellation of "+short(id)+" (demo) requested at the provider")
			cp.mu.Lock()
			got := append([]string(nil), cp.cancelled...)
			cp.mu.Unlock()
			if len(got) != 1 || got[0] != "run-"+id {
				t.Errorf("provider asked to cancel %q, want [run-%s]", got, id)
			}
			g, err := e.store.Get(context.Background(), id)
			if err != nil || g.State != approvals.StateRunning || g.Reason != "stop it" || g.DecidedBy == nil || g.DecidedBy.ID != megan.id {
				t.Fatalf("gate after the cancel request = %+v, %v", g, err)
			}
		})
	}
}
