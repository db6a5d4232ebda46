// Package cards builds the Adaptive Cards gatebot posts in Teams: the
// approval gate in each of its states, short notices and the help card.
//
// Cards are typed Go structs that marshal to Adaptive Card 1.5 JSON (the
// highest version Teams renders for bot-sent cards). Every piece of text that
// comes from a user or a config file goes through one escaping path, so a
// value like "[click](https://evil)" shows as typed instead of becoming a
// link, and is size-capped so a card stays far below Teams' message limit.
//
// Button clicks come back as ActionData (verb + gate id), through
// Action.Execute (Universal Actions) or its Action.Submit fallback; the
// handlers package parses them with ParseActionData and wraps cards into
// activity attachments with ContentType.
//
// It may import approvals (read-only domain types) and the standard library;
// it must not import bot, handlers, cmd or anything that does I/O: building a
// card is a pure function of its inputs.
//
//	card := cards.Gate(gate, cards.GateView{Now: time.Now(), InputOrder: def.InputNames()})
//	body, _ := json.Marshal(card)
package cards
