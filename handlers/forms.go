package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
	"github.com/gatebot/gatebot/cards"
	"github.com/gatebot/gatebot/pipelines"
)

// The run form: `pipelines` lists each pipeline with a Run… button
// (VerbForm), which answers with the form generated from the pipeline's
// inputs; Run (VerbRun) opens the gate. Both are Action.Execute invokes,
// so a form with mistakes comes back as the same form with the errors next
// to its fields, and a valid one turns into the gate's card in place.

// formAnswer answers the form verbs.
func (s *Server) formAnswer(ctx context.Context, act *bot.Activity, data cards.ActionData) bot.InvokeResponse {
	info, ok := s.pipelineInfo(data.Pipeline)
	if !ok {
		return bot.CardResponse(cards.Message(cards.ToneRefusal, "Unknown pipeline", s.unknownPipeline(data.Pipeline)))
	}
	if data.Verb == cards.VerbForm {
		return bot.CardResponse(cards.Form(info, nil, nil))
	}
	g, errs, err := s.openFromForm(ctx, act, data)
	switch {
	case errors.Is(err, approvals.ErrUnavailable):
		return bot.ErrorResponse(500, "ServiceUnavailable", "gatebot cannot record requests right now; please try again in a moment")
	case err != nil:
		loggerFrom(ctx).Error("could not open gate from the form", "err", err)
		return bot.CardResponse(cards.Form(info, data.Inputs, map[string]string{"": "Sorry, the request could not be recorded. Please try again."}))
	case len(errs) > 0:
		return bot.CardResponse(cards.Form(info, data.Inputs, errs))
	}
	// The answer replaces the form's message for everyone: it is the
	// gate's shared card from now on.
	raw, digest, err := s.renderShared(g)
	if err != nil {
		return bot.ErrorResponse(500, "InternalError", "the gate's card could not be rendered")
	}
	ref, _ := json.Marshal(act.Reference())
	if act.ReplyToID != "" {
		if _, err := s.opt.Store.SetPost(ctx, g.ID, approvals.Post{Conversation: ref, ActivityID: act.ReplyToID}, digest); err != nil {
			loggerFrom(ctx).Warn("could not record the form's message as the gate's card; the unposted sweep posts one", "gate_id", g.ID, "err", err)
		}
	}
	return bot.CardResponse(raw)
}

// openFromForm opens a gate from a submitted run form. errs, by input name
// ("" for the whole form), are the mistakes to show on the form.
func (s *Server) openFromForm(ctx context.Context, act *bot.Activity, data cards.ActionData) (*approvals.Gate, map[string]string, error) {
	p := s.opt.Pipelines[data.Pipeline]
	requester, err := s.person(ctx, act, needsUPN(p.Runners) || p.Policy.NeedsUPN())
	if err != nil {
		return nil, map[string]string{"": identityUnconfirmed}, nil
	}
	raw := make(map[string]any, len(data.Inputs))
	for k, v := range data.Inputs {
		if v == "" && !p.Def.Inputs[k].Required {
			continue // an empty optional field takes the default
		}
		raw[k] = v
	}
	message := ""
	for _, k := range messageKeys {
		if _, declared := p.Def.Inputs[k]; !declared && raw[k] != nil {
			message, _ = raw[k].(string)
			delete(raw, k)
		}
	}
	g, err := s.openInConversation(ctx, act, data.Pipeline, p, requester, raw, message)
	var (
		ie  pipelines.InputErrors
		inv *approvals.InvalidError
	)
	switch {
	case errors.Is(err, approvals.ErrNotRunner):
		return nil, map[string]string{"": fmt.Sprintf("You are not allowed to run %s.", data.Pipeline)}, nil
	case errors.As(err, &ie):
		errs := map[string]string{}
		for _, e := range ie {
			errs[e.Name] = e.Reason
		}
		return nil, errs, nil
	case errors.As(err, &inv):
		return nil, map[string]string{"": fmt.Sprintf("The %s %s.", inv.Field, inv.Reason)}, nil
	case err != nil:
		return nil, nil, err
	}
	loggerFrom(ctx).Info("gate opened from the run form", "gate_id", g.ID, "pipeline", data.Pipeline)
	return g, nil, nil
}

// pipelineInfo is one pipeline's entry of pipelineInfos.
func (s *Server) pipelineInfo(name string) (cards.PipelineInfo, bool) {
	infos := s.pipelineInfos()
	i := slices.IndexFunc(infos, func(p cards.PipelineInfo) bool { return p.Name == name })
	if i < 0 {
		return cards.PipelineInfo{}, false
	}
	return infos[i], true
}
