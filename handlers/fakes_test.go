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
