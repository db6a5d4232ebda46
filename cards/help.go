package cards

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// Budgets for notices and the help card, in JSON bytes (see budgetName).
const (
	budgetNotice    = 8000  // all lines of a notice
	budgetPipelines = 14000 // all pipeline entries of the help card
	budgetHelpDesc  = 200   // one description on the help card
	maxHelpInputs   = 12
	textOverhead    = len(`{"type":"TextBlock","text":"","wrap":true},`)
)

// Notice builds a short informational card: a bold title and a few lines of
// text. Title and lines are escaped like user text (they often quote what a
// user typed), so they cannot carry markdown.
func Notice(title string, lines ...string) *Card {
	c := &Card{MSTeams: &MSTeams{Width: "Full"}}
	c.Body = append(c.Body, TextBlock{Text: inline(title, budgetLine), Wrap: true, Size: "medium", Weight: "bolder"})
	c.Body = append(c.Body, noticeLines(lines)...)
	return c
}

// Message is a Notice whose title sits in a band coloured by tone: grey
// (emphasis) for information, good for confirmations ("Your approval is recorded (1
// of 2)"), attention only for refusals and failures. Text keeps the
// default colour.
func Message(tone Tone, title string, lines ...string) *Card {
	c := &Card{MSTeams: &MSTeams{Width: "Full"}}
	box := noticeBox(title, tone)
	box.Bleed = true
	c.Body = append(c.Body, box)
	c.Body = append(c.Body, noticeLines(lines)...)
	return c
}

func noticeLines(lines []string) []Element {
	var body []Element
	used := 0
	for i, l := range lines {
		text := block(l, budgetLine)
		if text == "" {
			continue
		}
		if used += jsonLen(text) + textOverhead; used > budgetNotice {
			body = append(body, TextBlock{Text: fmt.Sprintf("… and %d more", len(lines)-i), Wrap: true, IsSubtle: true})
			break
		}
		body = append(body, TextBlock{Text: text, Wrap: true})
	}
	return body
}

// PipelineInfo describes one pipeline for the help card.
type PipelineInfo struct {
	Name, Description string
	Inputs            []InputInfo
}

// InputInfo describes one pipeline input for the help card, the pipeline
// list and the run form. Type is "string", "number" or "boolean"; Default
// is empty when there is none. Enum, Pattern, Min and Max are the
// declared constraints (pipelines.Input), checked again by the bot.
type InputInfo struct {
	Name, Type, Description string
	Required                bool
	Default                 string
	Enum                    []string
	Pattern                 string
	Min, Max                *float64
}

// plainName is a bot name shown as is, in code.
var plainName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._-]{0,79}$`)

// Help builds the usage card: the /run syntax, then each pipeline with its
// inputs in the order given.
func Help(pipelines []PipelineInfo) *Card { return HelpFor("gatebot", pipelines) }

// HelpFor is Help for a bot installed under another name, which is what
// people type after @ in a channel.
func HelpFor(botName string, pipelines []PipelineInfo) *Card {
	name := inline(strings.TrimSpace(botName), 80)
	if name == "" {
		name = "gatebot"
	}
	mention := "@" + name + " run …"
	if plainName.MatchString(name) {
		mention = "`" + mention + "`" // code only when nothing in it needed escaping
	}
	c := &Card{MSTeams: &MSTeams{Width: "Full"}}
	c.Body = append(c.Body,
		Container{Style: "emphasis", Bleed: true, Items: []Element{
			TextBlock{Text: name, Wrap: true, Size: "large", Weight: "bolder"},
			TextBlock{Text: "Ask for a pipeline run; it starts once enough people approve it.", Wrap: true, Spacing: "none"},
		}},
		FactSet{Facts: []Fact{
			{Title: "Run", Value: "`/run <pipeline> key=value …`"},
			{Title: "Quote spaces", Value: "`/run deploy msg=\"hello world\"`"},
			{Title: "List pipelines", Value: "`pipelines` (each with a Run… form)"},
			{Title: "Open gates", Value: "`pending`"},
			{Title: "One gate", Value: "`status g_abcd1234`, `cancel g_abcd1234 reason`"},
			{Title: "Help", Value: "`help`"},
		}},
		TextBlock{Text: "In a channel or group chat, mention the bot first: " + mention, Wrap: true, IsSubtle: true},
	)
	if len(pipelines) == 0 {
		c.Body = append(c.Body, TextBlock{Text: "No pipelines are configured.", Wrap: true, Separator: true})
		return c
	}
	c.Body = append(c.Body, TextBlock{Text: "Pipelines", Wrap: true, Size: "medium", Weight: "bolder", Separator: true})
	used := 0
	for i, p := range pipelines {
		e := pipelineHelp(p)
		// Measured, not estimated: entries vary too much (inputs, text).
		raw, err := json.Marshal(e)
		if used += len(raw); err != nil || used > budgetPipelines {
			c.Body = append(c.Body, TextBlock{Text: fmt.Sprintf("… and %d more %s", len(pipelines)-i, plural(len(pipelines)-i, "pipeline", "pipelines")),
				Wrap: true, IsSubtle: true})
			break
		}
		c.Body = append(c.Body, e)
	}
	return c
}

func pipelineHelp(p PipelineInfo) Element {
	items := []Element{TextBlock{Text: "**" + inline(p.Name, budgetName) + "**", Wrap: true}}
	if p.Description != "" {
		items = append(items, TextBlock{Text: inline(p.Description, budgetHelpDesc), Wrap: true, IsSubtle: true, Spacing: "none"})
	}
	if len(p.Inputs) == 0 {
		items = append(items, TextBlock{Text: "No inputs", Wrap: true, IsSubtle: true, Spacing: "none"})
		return Container{Items: items, Spacing: "medium"}
	}
	facts := make([]Fact, 0, min(len(p.Inputs), maxHelpInputs))
	for i, in := range p.Inputs {
		if i == maxHelpInputs {
			facts = append(facts, Fact{Title: Ellipsis, Value: fmt.Sprintf("%d more inputs", len(p.Inputs)-i)})
			break
		}
		facts = append(facts, Fact{Title: inline(in.Name, budgetName), Value: inputHelp(in)})
	}
	items = append(items, FactSet{Facts: facts, Spacing: "small"})
	return Container{Items: items, Spacing: "medium"}
}

// inputHelp renders "string, required — Image tag" or
// "boolean, default false — Skip the deploy".
func inputHelp(in InputInfo) string {
	typ := in.Type
	if typ == "" {
		typ = "string"
	}
	parts := []string{inline(typ, budgetName)}
	switch {
	case in.Required:
		parts = append(parts, "required")
	case in.Default != "":
		parts = append(parts, "default "+inline(in.Default, budgetName))
	default:
		parts = append(parts, "optional")
	}
	s := strings.Join(parts, ", ")
	if in.Description != "" {
		s += " — " + inline(in.Description, budgetHelpDesc)
	}
	return s
}
