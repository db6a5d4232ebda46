package handlers_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/channels"
	"github.com/gatebot/gatebot/handlers"
)

// chanEnv is a signed test server with configured channels and a binding
// store: ops (tenant-1) and emea (tenant-2) to be registered from Teams,
// releases fixed in the config.
type chanEnv struct {
	*testEnv
	bindings *channels.Store
}

func newChanEnv(t *testing.T, rdb redis.UniversalClient) *chanEnv {
	t.Helper()
	prefix := "gbtest:chan:" + randomHex(6) + ":"
	t.Cleanup(func() { rdb.Del(context.Background(), prefix+"channels") })
	b, err := channels.NewStore(rdb, channels.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, rdb, approvals.Policy{Required: 1, Timeout: time.Hour}, envOptions{
		signed: true, tenants: []string{"tenant-1", "tenant-2"},
		mod: func(o *handlers.Options) {
			o.Channels = map[string]handlers.Channel{
				"ops":      {TenantID: "tenant-1"},
				"emea":     {TenantID: "tenant-2"},
				"releases": {ServiceURL: "https://smba.trafficmanager.net/emea/", ConversationID: "19:releases@thread.tacv2", TenantID: "tenant-1"},
			}
			o.Pipelines["demo"].Channel = "ops"
			o.Bindings = b
		},
	})
	return &chanEnv{testEnv: e, bindings: b}
}

// inChannel is a message in a team channel of tenant, as Teams sends it.
func inChannel(channelID, channelName, tenant string) map[string]any {
	return map[string]any{
		"conversation": map[string]any{"id": channelID + ";messageid=1700000000000", "conversationType": "channel", "isGroup": true, "tenantId": tenant},
		"channelData": map[string]any{"tenant": map[string]any{"id": tenant},
			"team":    map[string]any{"id": "19:team-" + tenant + "@thread.tacv2", "name": "Platform"},
			"channel": map[string]any{"id": channelID, "name": channelName}},
	}
}

// say sends text from where (nil: the personal chat) and returns the
// raw reply gatebot posts.
func (e *chanEnv) say(where map[string]any, from user, text string) string {
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
	defer e.conn.mu.Unlock()
	return e.conn.posts[n].Raw
}

func (e *chanEnv) bound(name string) (channels.Binding, bool) {
	e.t.Helper()
	b, err := e.bindings.Get(context.Background(), name)
	if errors.Is(err, channels.ErrNotFound) {
		return b, false
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return b, true
}

func TestChannelRegisterAndList(t *testing.T) {
	for name, rdb := range redisClients(t) {
		t.Run(name, func(t *testing.T) {
			e := newChanEnv(t, rdb)
			opsRoom := inChannel("19:opsroom@thread.tacv2", "Ops room", "tenant-1")

			got := e.say(opsRoom, alex, "channel register ops")
			if !strings.Contains(got, "ops is now this channel") || !strings.Contains(got, "for demo will be posted here") {
				t.Errorf("register answered %s", got)
			}
			b, ok := e.bound("ops")
			if !ok || b.ConversationID != "19:opsroom@thread.tacv2" || b.TenantID != "tenant-1" || b.TeamName != "Platform" ||
				b.ChannelName != "Ops room" || b.RegisteredBy.Name != "Alex Wilber" || b.ServiceURL != e.conn.serviceURL() || b.RegisteredAt.IsZero() {
				t.Fatalf("binding = %+v, %v", b, ok)
			}

			got = e.say(nil, megan, "channel list")
			for _, want := range []string{
				"ops → Platform / Ops room, registered by Alex Wilber on " + b.RegisteredAt.Format("2006-01-02"),
				"releases → set in gatebot's config",
				"emea → not registered",
			} {
				if !strings.Contains(got, want) {
					t.Errorf("list lacks %q: %s", want, got)
				}
			}

			// Another channel cannot take ops, nor release it.
			random := inChannel("19:random@thread.tacv2", "Random", "tenant-1")
			got = e.say(random, megan, "channel register ops")
			if !strings.Contains(got, "ops is already registered to Platform / Ops room by Alex Wilber") {
				t.Errorf("second register answered %s", got)
			}
			got = e.say(random, megan, "channel unregister ops")
			if !strings.Contains(got, "it can be released only from there") {
				t.Errorf("unregister elsewhere answered %s", got)
			}
			if b, _ := e.bound("ops"); b.ConversationID != "19:opsroom@thread.tacv2" {
				t.Errorf("ops moved to %s", b.ConversationID)
			}
			got = e.say(opsRoom, megan, "channel unregister ops")
			if !strings.Contains(got, "ops is no longer this channel") {
				t.Errorf("unregister answered %s", got)
			}
			if _, ok := e.bound("ops"); ok {
				t.Error("ops still bound")
			}
		})
	}
}

// TestChannelRegisterRefusals: every refused registration says why and
// stores nothing.
func TestChannelRegisterRefusals(t *testing.T) {
	e := newChanEnv(t, redisClients(t)["miniredis"])
	opsRoom := inChannel("19:opsroom@thread.tacv2", "Ops room", "tenant-1")
	cases := []struct {
		name  string
		where map[string]any
		text  string
		want  string
	}{
		{"unknown name", opsRoom, "channel register opz", `There is no configured channel \"opz\". Did you mean ops? Configured channels: emea, ops, releases.`},
		{"channel of another tenant", inChannel("19:t2@thread.tacv2", "General", "tenant-2"), "channel register ops", "ops belongs to another tenant"},
		{"personal chat", nil, "channel register ops", "channel register works in a team channel"},
		{"fixed in config", opsRoom, "channel register releases", "releases is set in gatebot's config"},
		{"no name", opsRoom, "channel register", "Usage: @gatebot channel register"},
		{"unknown subcommand", opsRoom, "channel add ops", "Usage: @gatebot channel register"},
	}
	for _, c := range cases {
		if got := e.say(c.where, alex, c.text); !strings.Contains(got, c.want) {
			t.Errorf("%s: answered %s, want %q", c.name, got, c.want)
		}
	}
	list, err := e.bindings.List(context.Background())
	if err != nil || len(list) != 0 {
		t.Errorf("bindings after refusals: %+v, %v", list, err)
	}
}

// TestChannelRegisterForeignTenant: a tenant gatebot does not serve is
// dropped before any command runs: no binding, no reply.
func TestChannelRegisterForeignTenant(t *testing.T) {
	e := newChanEnv(t, redisClients(t)["miniredis"])
	evil := inChannel("19:opsroom@thread.tacv2", "Ops room", "tenant-evil")
	msg := e.activity("message", alex, evil)
	msg["text"] = "channel register ops"
	if resp, body := e.post(msg); resp.StatusCode != http.StatusOK || len(body) != 0 {
		t.Fatalf("answered %d %q, want a bare 200", resp.StatusCode, body)
	}
	time.Sleep(200 * time.Millisecond) // an async reply would be out by now
	if _, ok := e.bound("ops"); ok {
		t.Error("a foreign tenant registered ops")
	}
	if n := e.connectorCalls(); n != 0 {
		t.Errorf("%d connector calls for a foreign tenant", n)
	}
	if got := e.h.Refusals().Tenant.Load(); got != 1 {
		t.Errorf("tenant refusals = %d, want 1", got)
	}
}

// TestInstallSaysHelloOnce: Teams sends a conversationUpdate and an
// installationUpdate for one install; gatebot records the conversation
// and posts the help card once.
func TestInstallSaysHelloOnce(t *testing.T) {
	e := newChanEnv(t, redisClients(t)["miniredis"])
	room := inChannel("19:opsroom@thread.tacv2", "Ops room", "tenant-1")
	room["conversation"] = map[string]any{"id": "19:opsroom@thread.tacv2", "conversationType": "channel", "isGroup": true, "tenantId": "tenant-1"}
	added := e.activity("conversationUpdate", alex, room)
	added["membersAdded"] = []any{map[string]any{"id": "28:gatebot"}}
	install := e.activity("installationUpdate", alex, room)
	install["action"] = "add"
	for _, a := range []map[string]any{added, install, added} {
		if resp, body := e.post(a); resp.StatusCode != http.StatusOK {
			t.Fatalf("%v: %d %s", a["type"], resp.StatusCode, body)
		}
	}
	e.conn.waitFor("the hello card", func(posts, _ []recorded) bool { return len(posts) >= 1 })
	time.Sleep(200 * time.Millisecond) // a second hello would be out by now
	e.conn.mu.Lock()
	posts := append([]recorded(nil), e.conn.posts...)
	e.conn.mu.Unlock()
	if len(posts) != 1 {
		t.Fatalf("%d posts, want one hello", len(posts))
	}
	if p := posts[0]; !strings.Contains(p.Raw, "application/vnd.microsoft.card.adaptive") || !strings.Contains(p.Raw, "demo") || p.Activity["replyToId"] != nil {
		t.Errorf("hello is not the help card as a new message: %s", p.Raw)
	}
	ref, err := e.store.Conversation(context.Background(), "19:opsroom@thread.tacv2")
	if err != nil || !strings.Contains(string(ref), e.conn.serviceURL()) {
		t.Errorf("conversation reference %s, %v", ref, err)
	}
	// A new member joining is no install: no hello.
	joined := e.activity("conversationUpdate", alex, room)
	joined["membersAdded"] = []any{map[string]any{"id": "29:newcomer"}}
	e.post(joined)
	upgrade := e.activity("installationUpdate", alex, room)
	upgrade["action"] = "add-upgrade"
	e.post(upgrade)
	time.Sleep(200 * time.Millisecond)
	if n := e.connectorCalls(); n != 1 {
		t.Errorf("%d posts after a member joined and an upgrade, want still 1", n)
	}
}

// TestAPIGateGoesToRegisteredChannel: a config channel without a
// conversation id posts API gates where it was registered from Teams,
// and refuses them until it is.
func TestAPIGateGoesToRegisteredChannel(t *testing.T) {
	for name, rdb := range redisClients(t) {
		t.Run(name, func(t *testing.T) {
			prefix := "gbtest:chan:" + randomHex(6) + ":"
			t.Cleanup(func() { rdb.Del(context.Background(), prefix+"channels") })
			b, err := channels.NewStore(rdb, channels.Options{Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			e := newAPIEnv(t, rdb, apiEnvOptions{mod: func(o *handlers.Options) {
				o.Channels = map[string]handlers.Channel{"releases": {TenantID: "tenant-1"}}
				o.Bindings = b
			}})
			resp, raw := e.api("POST", "/api/v1/gates", e.tok["ci-prod"], validCreate, nil)
			if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(raw), "channel register") {
				t.Fatalf("before registration: %d %s", resp.StatusCode, raw)
			}
			if _, err := b.Register(context.Background(), channels.Binding{Name: "releases", TenantID: "tenant-1",
				ConversationID: releasesChannel, ServiceURL: e.conn.serviceURL(), RegisteredBy: channels.Person{ID: alex.id}}); err != nil {
				t.Fatal(err)
			}
			resp, raw = e.api("POST", "/api/v1/gates", e.tok["ci-prod"], validCreate, nil)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("after registration: %d %s", resp.StatusCode, raw)
			}
			// serveCreate checks the channel id and tenant of the post.
			if n := e.createCount(); n != 1 {
				t.Errorf("%d cards posted, want 1", n)
			}
		})
	}
}
