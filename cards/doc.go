// Package cards builds the Adaptive Cards gatebot posts in Teams: the
// approval gate in each of its states (shared, approver and read-only
// renderings, and the confirm step), short notices and messages, the help
// card, the pipeline list, the run form and the list of pending gates.
//
// Every state reads the same way: a header band in the state's container
// style (good, attention, warning, accent, emphasis) with a small PNG badge
// and the state word in default-colour text, so nothing depends on
// low-contrast coloured text. Times are written as {{DATE()}} {{TIME()}} so
// each viewer sees their own zone, and every gate card ends with the short
// gate id people type in commands. Summary gives the activity's preview
// line. The badges are drawn in badge_draw_test.go and generated into
// badgedata.go by `go test ./cards -update`, like the golden files.
//
// Cards are typed Go structs that marshal to Adaptive Card 1.5 JSON (the
// highest version Teams renders for bot-sent cards). Every piece of text that
// comes from a user or a config file goes through one escaping path, so a
// value like "[click](https://evil)" shows as typed instead of becoming a
// link, and is size-capped so a card stays far below Teams' message limit.
//
// Button clicks come back as ActionData (verb + gate id, or pipeline and
// form inputs for VerbForm and VerbRun), through
// Action.Execute (Universal Actions) or its Action.Submit fallback; the
// handlers package parses them with ParseActionData and wraps cards into
// activity attachments with ContentType.
//
// It may import approvals (read-only domain types) and the standard library;
// it must not import bot, handlers, cmd or anything that does I/O: building a
// card is a pure function of its inputs.
//
//	card := cards.Gate(gate, cards.GateView{Now: time.Now(), InputOrder: def.InputNames(), Eligible: approvers})
//	activity.Summary = cards.Summary(gate)
//
// e2e/cards renders every golden card with the official renderer in
// headless Chromium (TestRenderGolden, .ci/cards-render.sh).
package cards
