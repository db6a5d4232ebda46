package handlers_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatebot/gatebot/approvals"
)

// invokeData sends an Action.Execute invoke carrying data as is, from the
// card message replyTo, and returns the invoke answer.
func (e *testEnv) invokeData(from user, data map[string]any, replyTo string) map[string]any {
	e.t.Helper()
	verb, _ := data["verb"].(string)
	resp, body := e.post(e.activity("invoke", from, map[string]any{
		"name": "adaptiveCard/action", "replyToId": replyTo,
		"value": map[string]any{"action": map[string]any{"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"},
	}))
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("invoke %s: HTTP %d %s", verb, resp.StatusCode, body)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		e.t.Fatalf("invoke %s: body is not JSON: %s", verb, body)
	}
	return out
}

// TestRunForm: Run… answers with the form; a mistake comes back on the
// form next to its field and opens nothing; a valid form turns into the
// gate's card in place, recorded as the gate's card, which then works as
// any other (the approval updates that same message).
func TestRunForm(t *testing.T) {
	e := newEnv(t, redisClients(t)["miniredis"], approvals.Policy{Required: 1, Timeout: time.Hour})
	form := invokeCardText(t, e.invokeData(alex, map[string]any{"verb": "form", "pipeline": "demo"}, "form-msg"))
	for _, w := range []string{`"type":"Input.Text"`, `"id":"in.version"`, `"type":"Input.Toggle"`, `"verb":"run"`, `"isRequired":true`} {
		if !strings.Contains(form, w) {
			t.Errorf("the form lacks %s: %s", w, form)
		}
	}
	bad := invokeCardText(t, e.invokeData(alex, map[string]any{"verb": "run", "pipeline": "demo", "in.version": "banana"}, "form-msg"))
	if !strings.Contains(bad, `"id":"in.version"`) || !strings.Contains(bad, "does not match") {
		t.Errorf("a bad version does not come back on the form with its error: %s", bad)
	}
	if gateIDRe.MatchString(bad) {
		t.Fatalf("a bad form opened a gate: %s", bad)
	}
	ok := invokeCardText(t, e.invokeData(alex, map[string]any{"verb": "run", "pipeline": "demo", "in.version": "1.2.7", "in.dry_run": "true"}, "form-msg"))
	m := gateIDRe.FindStringSubmatch(ok)
	if m == nil || !strings.Contains(ok, "1.2.7") {
		t.Fatalf("a valid form did not answer with the gate's card: %s", ok)
	}
	g, err := e.store.Get(t.Context(), m[1])
	if err != nil {
		t.Fatal(err)
	}
	if g.Post.ActivityID != "form-msg" || g.Post.PostedAt.IsZero() || g.Inputs["dry_run"] != true {
		t.Errorf("gate post %+v inputs %v: want the form's message as its card and dry_run typed true", g.Post, g.Inputs)
	}
	e.click(megan, g.ID, "approve", "", "form-msg")
	e.conn.waitFor("the form's message updated with the run", func(_, updates []recorded) bool {
		for _, u := range updates {
			if u.ActivityID == "form-msg" && strings.Contains(u.Raw, `"summary":"Running: demo 1.2.7"`) {
				return true
			}
		}
		return false
	})
}

// TestReminderUnderTheCard: approval.remind_before posts one reminder under
// the gate's card, saying what waits, for how long and for how many.
func TestReminderUnderTheCard(t *testing.T) {
	e := newEnv(t, redisClients(t)["miniredis"], approvals.Policy{Required: 1, Timeout: 3 * time.Second, RemindBefore: 2500 * time.Millisecond})
	e.send(alex, "/run demo version=1.2.8")
	_, actID := e.lastCardPost(1)
	e.conn.waitFor("the reminder", func(posts, _ []recorded) bool {
		for _, p := range posts {
			if strings.Contains(p.Raw, "Reminder: Approval needed: demo 1.2.8") && strings.Contains(p.Raw, "still needs 1 approval.") &&
				p.Activity["replyToId"] == actID {
				return true
			}
		}
		return false
	})
}

// TestApproversByName: an approver listed by Entra id is looked up in the
// conversation once, then shown by name, @mentioned and offered the
// approver view (refresh.userIds) on the gate's card.
func TestApproversByName(t *testing.T) {
	e := newEnv(t, redisClients(t)["miniredis"], approvals.Policy{Required: 1, Timeout: time.Hour, Approvers: []string{"aad:" + megan.aad}})
	e.send(alex, "/run demo version=1.2.9")
	e.lastCardPost(1)
	e.send(alex, "/run demo version=1.3.0")
	e.lastCardPost(2)
	e.conn.mu.Lock()
	card, lookups := e.conn.posts[0].Raw, len(e.conn.lookups)
	e.conn.mu.Unlock()
	for _, w := range []string{"Megan Bowen", `"type":"mention"`, `"userIds":["29:megan"]`} {
		if !strings.Contains(card, w) {
			t.Errorf("the card lacks %s: %s", w, card)
		}
	}
	if lookups != 1 {
		t.Errorf("%d member lookups for two cards, want 1 (cached)", lookups)
	}
}

// TestClickAdoptsALostCard: a gate whose card id was never recorded (a
// replica died between the post and SetPost) takes the clicked message as
// its card, so the updates after the click reach it.
func TestClickAdoptsALostCard(t *testing.T) {
	e := newEnv(t, redisClients(t)["miniredis"], approvals.Policy{Required: 1, Timeout: time.Hour})
	e.send(alex, "/run demo version=1.3.1")
	gateID, actID := e.lastCardPost(1)
	g, err := e.store.Get(t.Context(), gateID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.SetPost(t.Context(), gateID, approvals.Post{Conversation: g.Post.Conversation}, ""); err != nil {
		t.Fatal(err)
	}
	e.click(megan, gateID, "approve", "", actID)
	if g, _ := e.store.Get(t.Context(), gateID); g.Post.ActivityID != actID {
		t.Fatalf("card on record %q, want the clicked %q", g.Post.ActivityID, actID)
	}
	e.conn.waitFor("an update of the adopted card", func(_, updates []recorded) bool {
		for _, u := range updates {
			if u.ActivityID == actID {
				return true
			}
		}
		return false
	})
}
