package cards

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Budgets of the run form and the pipeline list, in JSON bytes.
const (
	budgetForm     = 16000 // all fields of one form
	budgetList     = 16000 // all entries of the pipeline list
	maxFormFields  = 40
	maxEnumChoices = 100
	// maxPipelineName caps the pipeline name carried in button data; a
	// configured name is far shorter, and a longer one comes back unknown.
	maxPipelineName = 200
)

// dataName is a pipeline name as button data carries it.
func dataName(name string) string {
	if len(name) <= maxPipelineName {
		return name
	}
	return truncate(name, maxPipelineName/4)
}

// Form builds the run form of p from its input schema: a text field per
// string input (with the declared pattern checked by the client), a
// toggle per boolean, a drop-down per enum, a number field per number
// (with min/max). values prefill the fields (else the defaults do); errs,
// by input name (or "" for the whole form), come back from the bot's own
// validation and show under the fields they are about. Run sends
// VerbRun with the pipeline name and every field under InputIDPrefix.
func Form(p PipelineInfo, values, errs map[string]string) *Card {
	c := &Card{MSTeams: &MSTeams{Width: "Full"}}
	name := inline(p.Name, budgetName)
	c.Body = append(c.Body, Container{Style: "accent", Bleed: true, Items: []Element{
		TextBlock{Text: "Run " + name, Wrap: true, Size: "large", Weight: "bolder"},
		TextBlock{Text: "The run starts once enough people approve it.", Wrap: true, Spacing: "none"},
	}})
	if p.Description != "" {
		c.Body = append(c.Body, TextBlock{Text: inline(p.Description, budgetDesc), Wrap: true, IsSubtle: true})
	}
	if len(errs) > 0 {
		n := 0
		for k := range errs {
			if k != "" {
				n++
			}
		}
		title := "**This form could not be submitted**"
		if n > 0 {
			title = fmt.Sprintf("**Fix %d %s below**", n, plural(n, "input", "inputs"))
		}
		lines := []Element{TextBlock{Text: title, Wrap: true}}
		if e := errs[""]; e != "" {
			lines = append(lines, TextBlock{Text: inline(e, budgetLine), Wrap: true, Spacing: "none"})
		}
		c.Body = append(c.Body, Container{Style: "attention", Items: lines})
	}
	used := 0
	for i, in := range p.Inputs {
		field := formField(in, values, errs)
		raw, err := json.Marshal(field)
		if used += len(raw); err != nil || used > budgetForm || i == maxFormFields {
			c.Body = append(c.Body, TextBlock{Text: fmt.Sprintf("%s %d more inputs do not fit this form; use /run %s key=value", Ellipsis, len(p.Inputs)-i, name),
				Wrap: true, IsSubtle: true})
			break
		}
		c.Body = append(c.Body, field...)
	}
	if len(p.Inputs) == 0 {
		c.Body = append(c.Body, TextBlock{Text: "This pipeline takes no inputs.", Wrap: true, IsSubtle: true})
	}
	run := executeData("Run", ActionData{Verb: VerbRun, Pipeline: dataName(p.Name)})
	run.Style = "positive"
	run.Fallback = ActionSubmit{Title: "Run", Style: "positive", Data: run.Data}
	c.Actions = []Action{run}
	c.FallbackText = truncate("Run "+plain(p.Name), maxSummaryRunes)
	return c
}

// formField is one input's field, its description and any error for it.
func formField(in InputInfo, values, errs map[string]string) []Element {
	id := InputIDPrefix + in.Name
	label := truncate(plain(in.Name), 100) // labels are plain text, not markdown
	value, ok := values[in.Name]
	if !ok {
		value = in.Default
	}
	value = truncate(value, 1000)
	msg := "Enter " + in.Name
	var field Element
	switch {
	case len(in.Enum) > 0:
		cs := InputChoiceSet{ID: id, Label: label, Style: "compact", Value: value, IsRequired: in.Required,
			Placeholder: "Choose…", Wrap: true}
		for i, e := range in.Enum {
			if i == maxEnumChoices {
				break
			}
			cs.Choices = append(cs.Choices, Choice{Title: truncate(plain(e), 100), Value: e})
		}
		cs.ErrorMessage = "Choose one of the values"
		field = cs
	case in.Type == "boolean":
		if value != "true" {
			value = "false"
		}
		field = InputToggle{ID: id, Label: label, Title: toggleTitle(in), Value: value, ValueOn: "true", ValueOff: "false", Wrap: true}
	case in.Type == "number":
		n := InputNumber{ID: id, Label: label, Min: in.Min, Max: in.Max, IsRequired: in.Required, Placeholder: "A number"}
		if f, err := strconv.ParseFloat(value, 64); err == nil {
			n.Value = &f
		}
		n.ErrorMessage = "Enter a number" + bounds(in)
		field = n
	default:
		t := InputText{ID: id, Label: label, Value: value, IsRequired: in.Required, MaxLength: 1000,
			Placeholder: placeholder(in), Regex: clientRegex(in.Pattern)}
		if t.Regex != "" {
			// Not the pattern itself: clients differ on whether this
			// text is markdown, which would eat its backslashes. The
			// pattern is shown, escaped, under the field.
			msg = "Not in the expected format (see below the field)"
		} else if in.Required {
			msg = in.Name + " is required"
		}
		t.ErrorMessage = msg
		field = t
	}
	out := []Element{field}
	hint := ""
	if in.Type != "boolean" {
		hint = inline(in.Description, budgetHelpDesc)
	}
	if in.Pattern != "" && len(in.Enum) == 0 && in.Type != "boolean" && in.Type != "number" {
		hint = strings.TrimSpace(hint + " · format: " + inline(truncate(in.Pattern, 100), budgetHelpDesc))
		hint = strings.TrimPrefix(hint, "· ")
	}
	if b := bounds(in); in.Type == "number" && b != "" && len(in.Enum) == 0 {
		hint = strings.TrimSpace(hint + " (a number" + b + ")")
	}
	if hint != "" {
		out = append(out, TextBlock{Text: hint, Wrap: true, IsSubtle: true, Size: "small", Spacing: "none"})
	}
	if e := errs[in.Name]; e != "" {
		// Styled like the client's own validation message under a field.
		out = append(out, TextBlock{Text: inline(e, budgetLine), Wrap: true, Size: "small", Weight: "bolder", Color: "attention", Spacing: "none"})
	}
	return out
}

func toggleTitle(in InputInfo) string {
	if in.Description != "" {
		return truncate(plain(in.Description), 200)
	}
	return plain(in.Name)
}

func placeholder(in InputInfo) string {
	if in.Required {
		return "Required"
	}
	return "Optional"
}

func bounds(in InputInfo) string {
	f := func(p *float64) string { return strconv.FormatFloat(*p, 'f', -1, 64) }
	switch {
	case in.Min != nil && in.Max != nil:
		return " from " + f(in.Min) + " to " + f(in.Max)
	case in.Min != nil:
		return " of at least " + f(in.Min)
	case in.Max != nil:
		return " of at most " + f(in.Max)
	}
	return ""
}

// clientRegex is a declared pattern the client can check, or "" when it
// uses Go-only syntax (flags, \A, \z, \Q, POSIX classes, \p): the bot
// validates every run anyway, so a pattern it cannot pass on costs only
// the early hint.
func clientRegex(p string) string {
	if p == "" || len(p) > 500 {
		return ""
	}
	for _, bad := range []string{"(?", `\A`, `\z`, `\Q`, "[[:", `\p`, `\P`} {
		if strings.Contains(p, bad) {
			return ""
		}
	}
	return p
}

// PipelineList lists the pipelines people can run here, each with its
// description, its inputs and a Run… button (VerbForm) that answers with
// its Form.
func PipelineList(pipelines []PipelineInfo) *Card {
	c := &Card{MSTeams: &MSTeams{Width: "Full"}}
	c.Body = append(c.Body, Container{Style: "emphasis", Bleed: true, Items: []Element{
		TextBlock{Text: "Pipelines", Wrap: true, Size: "large", Weight: "bolder"},
		TextBlock{Text: "Pick one to fill in its run form, or type `run <pipeline> key=value …`", Wrap: true, Spacing: "none"},
	}})
	if len(pipelines) == 0 {
		c.Body = append(c.Body, TextBlock{Text: "No pipelines are configured.", Wrap: true})
		return c
	}
	used := 0
	for i, p := range pipelines {
		e := pipelineEntry(p, i > 0)
		raw, err := json.Marshal(e)
		if used += len(raw); err != nil || used > budgetList {
			c.Body = append(c.Body, TextBlock{Text: fmt.Sprintf("… and %d more %s", len(pipelines)-i, plural(len(pipelines)-i, "pipeline", "pipelines")),
				Wrap: true, IsSubtle: true})
			break
		}
		c.Body = append(c.Body, e)
	}
	c.FallbackText = fmt.Sprintf("%d %s", len(pipelines), plural(len(pipelines), "pipeline", "pipelines"))
	return c
}

func pipelineEntry(p PipelineInfo, separator bool) Container {
	open := executeData("Run…", ActionData{Verb: VerbForm, Pipeline: dataName(p.Name)})
	text := []Element{TextBlock{Text: "**" + inline(p.Name, budgetName) + "**", Wrap: true}}
	if p.Description != "" {
		text = append(text, TextBlock{Text: inline(p.Description, budgetHelpDesc), Wrap: true, IsSubtle: true, Spacing: "none"})
	}
	var names []string
	for i, in := range p.Inputs {
		if i == maxHelpInputs {
			names = append(names, fmt.Sprintf("%d more", len(p.Inputs)-i))
			break
		}
		n := inline(in.Name, budgetName)
		if in.Required {
			n += " (required)"
		}
		names = append(names, n)
	}
	inputs := "No inputs"
	if len(names) > 0 {
		inputs = "Inputs: " + strings.Join(names, ", ")
	}
	text = append(text, TextBlock{Text: inputs, Wrap: true, Size: "small", Spacing: "none"})
	return Container{Separator: separator, Spacing: "medium", Items: []Element{ColumnSet{Columns: []Column{
		{Width: "stretch", Items: text},
		{Width: "auto", VerticalContentAlignment: "center", Items: []Element{ActionSet{Actions: []Action{open}}}},
	}}}}
}
