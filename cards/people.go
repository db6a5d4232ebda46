package cards

import (
	"fmt"
	"strings"

	"github.com/gatebot/gatebot/approvals"
)

// maxRefreshUsers is Teams' limit on refresh.userIds; maxUserIDBytes
// bounds one id (Teams user ids are about 80 bytes, Entra ids 36), so 60
// of them cannot crowd the card past Teams' size limit.
const (
	maxRefreshUsers = 60
	maxUserIDBytes  = 128
)

// people resolves how persons and allow-list entries are shown on one card,
// and collects the @mentions the card's text uses.
type people struct {
	names    map[string]string
	eligible []approvals.Person
	mentions []Mention
}

// nameOf is p's display name: a resolved name from GateView.Names (by UPN,
// Entra object id or Teams user id), else the name the channel gave.
func (pp *people) nameOf(p approvals.Person) string {
	for _, k := range []string{p.UPN, p.AADObjectID, "aad:" + p.AADObjectID, p.ID} {
		if n := pp.names[k]; k != "" && k != "aad:" && n != "" {
			return n
		}
	}
	return p.Display()
}

// person is the resolved person an allow-list entry (UPN or aad:<id>)
// names, when GateView.Eligible has them.
func (pp *people) person(entry string) (approvals.Person, bool) {
	for _, p := range pp.eligible {
		if p.Matches(entry) {
			return p, true
		}
	}
	return approvals.Person{}, false
}

// entryName is an allow-list entry as a name.
func (pp *people) entryName(entry string) string {
	if n := pp.names[entry]; n != "" {
		return n
	}
	if id, ok := strings.CutPrefix(entry, "aad:"); ok && pp.names[id] != "" {
		return pp.names[id]
	}
	if p, ok := pp.person(entry); ok {
		return pp.nameOf(p)
	}
	return entry
}

// mentionID is the id Teams can notify p by: the Teams user id, else the
// Entra object id; "" for people known only by UPN or an API token.
func mentionID(p approvals.Person) string {
	if strings.HasPrefix(p.ID, "29:") || strings.HasPrefix(p.ID, "8:orgid:") {
		return p.ID
	}
	return p.AADObjectID
}

// angleBrackets drops < and >; built once, as a Replacer's tables cost
// kilobytes to build.
var angleBrackets = strings.NewReplacer("<", "", ">", "")

// mention renders p for a TextBlock: as an @mention when Teams can resolve
// them, else as their bold name.
func (pp *people) mention(p approvals.Person) string {
	name := pp.nameOf(p)
	id := mentionID(p)
	// Angle brackets would end the <at> tag early; nothing else needs care
	// because the escaped text is used both in the block and the entity.
	shown := inline(angleBrackets.Replace(name), budgetName)
	if id == "" || shown == "" || len(id) > maxUserIDBytes {
		return "**" + inline(name, budgetName) + "**"
	}
	text := "<at>" + shown + "</at>"
	for _, m := range pp.mentions {
		if m.Text == text && m.Mentioned.ID == id {
			return text
		}
	}
	pp.mentions = append(pp.mentions, Mention{Type: "mention", Text: text,
		Mentioned: Mentioned{ID: id, Name: truncate(plain(name), 64)}})
	return text
}

// entry renders an allow-list entry, mentioning the person when resolved.
func (pp *people) entry(e string) string {
	if p, ok := pp.person(e); ok {
		return pp.mention(p)
	}
	return "**" + inline(pp.entryName(e), budgetName) + "**"
}

// list joins up to maxNames rendered items, then says how many more.
func list(items []string, render func(string) string, conj string) string {
	out := make([]string, 0, min(len(items), maxNames)+1)
	for i, s := range items {
		if i == maxNames {
			out = append(out, fmt.Sprintf("%d more", len(items)-maxNames))
			break
		}
		out = append(out, render(s))
	}
	switch len(out) {
	case 0:
		return ""
	case 1:
		return out[0]
	}
	return strings.Join(out[:len(out)-1], ", ") + " " + conj + " " + out[len(out)-1]
}

// refreshUsers are the Teams user ids whose clients fetch their own view of
// the card when they see it: the eligible approvers who have not voted, up
// to Teams' limit.
func refreshUsers(g *approvals.Gate, eligible []approvals.Person) []string {
	var ids []string
	seen := map[string]bool{}
	for _, p := range eligible {
		if !strings.HasPrefix(p.ID, "29:") || len(p.ID) > maxUserIDBytes || seen[p.ID] || voted(g, p) {
			continue
		}
		seen[p.ID] = true
		ids = append(ids, p.ID)
		if len(ids) == maxRefreshUsers {
			break
		}
	}
	return ids
}

func voted(g *approvals.Gate, p approvals.Person) bool {
	for _, v := range g.Votes {
		if v.By.Same(p) {
			return true
		}
	}
	return false
}

// votedEntry reports whether someone named by an allow-list entry voted.
func votedEntry(g *approvals.Gate, entry string) bool {
	for _, v := range g.Votes {
		if v.By.Matches(entry) {
			return true
		}
	}
	return false
}
