package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatebot/gatebot/pipelines"
)

// fakeConnector is an httptest Bot Connector that checks every request as
// the Playground's connector would and records what the bot posted.
type fakeConnector struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	posts   []recorded
	updates []recorded
	nextID  int
	changed chan struct{}
	// wantAuth is the exact Authorization header expected ("" = none).
	wantAuth string
	lookups  []string // member lookups, by the id asked for
	// failUpdates answers card updates (PUT) with 403, as when the bot
	// was removed from the conversation.
	failUpdates bool
	// creates are the 1:1 chats opened (POST /v3/conversations), by
	// member id; notInstalled lists members for whom Teams refuses one.
	creates      []string
	notInstalled map[string]bool
	// holdPosts, when set before traffic, makes every new-activity POST
	// wait until it is closed or the request is abandoned (a paced,
	// stalled Connector).
	holdPosts chan struct{}
}

type recorded struct {
	At           time.Time
	Conversation string
	ActivityID   string
	Activity     map[string]any
	Raw          string
}

var activityPath = regexp.MustCompile(`^/_connector/v3/conversations/([^/]+)/activities(?:/([^/]+))?$`)

func newFakeConnector(t *testing.T) *fakeConnector {
	fc := &fakeConnector{t: t, changed: make(chan struct{}, 1000)}
	fc.srv = httptest.NewServer(http.HandlerFunc(fc.serve))
	t.Cleanup(fc.srv.Close)
	return fc
}

func (fc *fakeConnector) serviceURL() string { return fc.srv.URL + "/_connector" }

func (fc *fakeConnector) serve(w http.ResponseWriter, r *http.Request) {
	if got := r.Header.Get("Authorization"); got != fc.wantAuth {
		fc.t.Errorf("connector: %s %s: Authorization = %q, want %q", r.Method, r.URL.Path, got, fc.wantAuth)
	}
	if mm := memberPath.FindStringSubmatch(r.URL.Path); mm != nil && r.Method == http.MethodGet {
		fc.serveMember(w, mm[2])
		return
	}
	if r.URL.Path == "/_connector/v3/conversations" && r.Method == http.MethodPost {
		fc.serveCreate(w, r)
		return
	}
	m := activityPath.FindStringSubmatch(r.URL.EscapedPath())
	if m == nil {
		fc.t.Errorf("connector: unexpected %s %s", r.Method, r.URL.Path)
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		fc.t.Errorf("connector: %s %s: Content-Type = %q", r.Method, r.URL.Path, ct)
	}
	body, _ := io.ReadAll(r.Body)
	fc.mu.Lock()
	hold := fc.holdPosts
	fc.mu.Unlock()
	if hold != nil && r.Method == http.MethodPost {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	var act map[string]any
	if err := json.Unmarshal(body, &act); err != nil {
		fc.t.Errorf("connector: body is not JSON: %v", err)
	}
	if act["type"] != "message" {
		fc.t.Errorf("connector: activity type = %v, want message", act["type"])
	}
	rec := recorded{At: time.Now(), Conversation: m[1], Activity: act, Raw: string(body)}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && m[2] == "":
		fc.nextID++
		rec.ActivityID = fmt.Sprintf("act-%d", fc.nextID)
		fc.posts = append(fc.posts, rec)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q}`, rec.ActivityID)
	case r.Method == http.MethodPut && m[2] != "" && fc.failUpdates:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"error":{"code":"BotNotInConversationRoster","message":"The bot is not part of the conversation roster."}}`)
		return
	case r.Method == http.MethodPut && m[2] != "":
		rec.ActivityID = m[2]
		fc.updates = append(fc.updates, rec)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q}`, m[2])
	default:
		fc.t.Errorf("connector: unexpected %s %s", r.Method, r.URL.Path)
		http.Error(w, "bad", http.StatusBadRequest)
		return
	}
	select {
	case fc.changed <- struct{}{}:
	default:
	}
}

// waitFor polls the recorded traffic until cond holds.
func (fc *fakeConnector) waitFor(what string, cond func(posts, updates []recorded) bool) {
	fc.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		fc.mu.Lock()
		ok := cond(fc.posts, fc.updates)
		fc.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-fc.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			fc.mu.Lock()
			defer fc.mu.Unlock()
			fc.t.Fatalf("timed out waiting for %s; posts=%d updates=%d", what, len(fc.posts), len(fc.updates))
		}
	}
}

// fakeProvider counts triggers per gate and serves statuses the test sets.
type fakeProvider struct {
	mu       sync.Mutex
	triggers map[string]int
	status   pipelines.Status
	fail     error    // when set, every Trigger fails with it at once
	rejected []string // "gate: by: reason" for each relayed rejection
}

// Reject records relayed rejections, as a provider with a waiting task would.
func (p *fakeProvider) Reject(ctx context.Context, req pipelines.Request, reason string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rejected = append(p.rejected, req.GateID+": "+strings.Join(req.Approvers, ",")+": "+reason)
	return nil
}

func (p *fakeProvider) rejections() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.rejected...)
}

func (p *fakeProvider) Trigger(ctx context.Context, req pipelines.Request) (pipelines.Run, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.triggers == nil {
		p.triggers = map[string]int{}
	}
	p.triggers[req.GateID]++
	if p.fail != nil {
		return pipelines.Run{}, p.fail
	}
	return pipelines.Run{ID: "run-" + req.GateID, URL: "https://ci.example/runs/" + req.GateID, Status: pipelines.StatusQueued}, nil
}

func (p *fakeProvider) Status(ctx context.Context, run pipelines.Run) (pipelines.Run, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	run.Status = p.status
	return run, nil
}

func (p *fakeProvider) setStatus(s pipelines.Status) {
	p.mu.Lock()
	p.status = s
	p.mu.Unlock()
}

func (p *fakeProvider) calls(gateID string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.triggers[gateID]
}

// serveMember answers a member lookup as Teams does: the account of a test
// user (by Teams id or Entra object id), 404 for anyone else.
func (fc *fakeConnector) serveMember(w http.ResponseWriter, id string) {
	fc.mu.Lock()
	fc.lookups = append(fc.lookups, id)
	fc.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	for _, u := range []user{alex, megan, dave} {
		if id == u.id || id == u.aad {
			json.NewEncoder(w).Encode(map[string]string{"id": u.id, "name": u.name, "aadObjectId": u.aad})
			return
		}
	}
	w.WriteHeader(http.StatusNotFound)
	io.WriteString(w, `{"error":{"code":"MemberNotFoundInConversation","message":"The member is not in the conversation."}}`)
}

// serveCreate opens a 1:1 chat as Teams does: one member (a Teams user
// id), the tenant in tenantId and channelData, the bot; 403
// BotNotInConversationRoster when the app is not installed for the user.
func (fc *fakeConnector) serveCreate(w http.ResponseWriter, r *http.Request) {
	var p struct {
		IsGroup bool `json:"isGroup"`
		Bot     struct {
			ID string `json:"id"`
		} `json:"bot"`
		Members []struct {
			ID string `json:"id"`
		} `json:"members"`
		TenantID    string `json:"tenantId"`
		ChannelData struct {
			Tenant struct {
				ID string `json:"id"`
			} `json:"tenant"`
		} `json:"channelData"`
		Activity any `json:"activity"`
	}
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		fc.t.Errorf("connector: create conversation: body is not JSON: %v", err)
	}
	switch {
	case p.IsGroup || len(p.Members) != 1 || !strings.HasPrefix(p.Members[0].ID, "29:"):
		fc.t.Errorf("connector: a 1:1 chat needs exactly one Teams user and isGroup false: %+v", p)
	case p.TenantID == "" || p.ChannelData.Tenant.ID != p.TenantID:
		fc.t.Errorf("connector: a 1:1 chat needs the tenant in tenantId and channelData.tenant.id: %+v", p)
	case p.Bot.ID == "":
		fc.t.Errorf("connector: create conversation without the bot: %+v", p)
	case p.Activity != nil:
		fc.t.Errorf("connector: gatebot posts the card after creating the chat, so it gets the card's id: %+v", p)
	}
	w.Header().Set("Content-Type", "application/json")
	member := ""
	if len(p.Members) > 0 {
		member = p.Members[0].ID
	}
	fc.mu.Lock()
	fc.creates = append(fc.creates, member)
	refused := fc.notInstalled[member]
	fc.mu.Unlock()
	if refused {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"error":{"code":"BotNotInConversationRoster","message":"The bot is not part of the conversation roster."}}`)
		return
	}
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"id":%q}`, dmConversation(member))
	select {
	case fc.changed <- struct{}{}:
	default:
	}
}

// dmConversation is the 1:1 chat id the fake connector gives a member.
func dmConversation(member string) string { return "a:dm-" + strings.TrimPrefix(member, "29:") }
