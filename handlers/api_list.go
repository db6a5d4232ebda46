package handlers

// GET /api/v1/gates: filters, pages and the cursor.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gatebot/gatebot/apitoken"
	"github.com/gatebot/gatebot/approvals"
)

// gateList is GET /api/v1/gates.
type gateList struct {
	Gates      []APIGate         `json:"gates"`
	NextCursor string            `json:"next_cursor,omitempty"`
	Links      map[string]string `json:"links"`
}

func onlyParams(q url.Values, allowed ...string) error {
	var fields []ProblemField
	for k := range q {
		if !slices.Contains(allowed, k) {
			fields = append(fields, ProblemField{Field: k, Detail: "is not a parameter of this endpoint"})
		}
	}
	for _, k := range allowed {
		if len(q[k]) > 1 {
			fields = append(fields, ProblemField{Field: k, Detail: "given more than once"})
		}
	}
	if len(fields) > 0 {
		slices.SortFunc(fields, func(a, b ProblemField) int { return strings.Compare(a.Field, b.Field) })
		return invalid(http.StatusBadRequest, "invalid-request", "unknown or repeated query parameters", fields...)
	}
	return nil
}

var gateStates = []approvals.State{
	approvals.StatePending, approvals.StateApproved, approvals.StateTriggering, approvals.StateRunning,
	approvals.StateSucceeded, approvals.StateFailed, approvals.StateRejected, approvals.StateExpired,
	approvals.StateCancelled, approvals.StateTriggerFailed,
}

func (s *Server) handleListGates(w http.ResponseWriter, r *http.Request, tok *apitoken.Token) error {
	ctx := r.Context()
	q := r.URL.Query()
	if err := onlyParams(q, "pipeline", "state", "cursor", "limit"); err != nil {
		return err
	}
	lq := approvals.ListQuery{Cursor: q.Get("cursor"), Limit: defaultListLimit}
	var fields []ProblemField
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			fields = append(fields, ProblemField{Field: "limit", Detail: fmt.Sprintf("an integer from 1 to %d", maxListLimit)})
		}
		lq.Limit = n
	}
	if v := q.Get("state"); v != "" {
		if !slices.Contains(gateStates, approvals.State(v)) {
			names := make([]string, len(gateStates))
			for i, st := range gateStates {
				names[i] = string(st)
			}
			fields = append(fields, ProblemField{Field: "state", Detail: "one of " + strings.Join(names, ", ")})
		}
		lq.State = approvals.State(v)
	}
	if len(fields) > 0 {
		return invalid(http.StatusBadRequest, "invalid-request", "invalid query parameters", fields...)
	}
	var allowed []string // nil: every pipeline
	if v := q.Get("pipeline"); v != "" {
		name, _, ok := s.apiPipeline(v)
		if !ok {
			return invalid(http.StatusNotFound, "unknown-pipeline", fmt.Sprintf("there is no pipeline %q", v),
				ProblemField{Field: "pipeline", Detail: "no such pipeline"})
		}
		if !tok.MayAccess(name) {
			return invalid(http.StatusForbidden, "forbidden", fmt.Sprintf("this token may not use pipeline %q", v),
				ProblemField{Field: "pipeline", Detail: "not among the token's pipelines"})
		}
		allowed = []string{name}
	} else if !tok.AllPipelines() {
		allowed = []string{}
		for _, name := range tok.Pipelines {
			if _, ok := s.opt.Pipelines[name]; ok {
				allowed = append(allowed, name)
			}
		}
	}
	gates, next, err := s.listGates(ctx, lq, allowed)
	if errors.Is(err, approvals.ErrBadCursor) {
		return invalid(http.StatusBadRequest, "invalid-request", "invalid cursor",
			ProblemField{Field: "cursor", Detail: "use the next_cursor of a previous page"})
	}
	if err != nil {
		return err
	}
	out := gateList{Gates: make([]APIGate, 0, len(gates)), NextCursor: next, Links: map[string]string{}}
	for _, g := range gates {
		out.Gates = append(out.Gates, s.gateView(g, tok))
	}
	self := *r.URL
	out.Links["self"] = s.baseURL() + self.RequestURI()
	if next != "" {
		nq := r.URL.Query()
		nq.Set("cursor", next)
		self.RawQuery = nq.Encode()
		out.Links["next"] = s.baseURL() + self.RequestURI()
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// listGates pages through the gates of the allowed pipelines (nil: all),
// newest first. Several pipelines are merged from their own indexes, each
// read from the same position, so a page costs one index read per
// pipeline however rare its gates are.
func (s *Server) listGates(ctx context.Context, q approvals.ListQuery, allowed []string) ([]*approvals.Gate, string, error) {
	switch {
	case allowed == nil:
		return s.opt.Store.List(ctx, q)
	case len(allowed) == 0:
		if q.Cursor != "" {
			if _, err := parseCursor(q.Cursor); err != nil {
				return nil, "", err
			}
		}
		return nil, "", nil
	case len(allowed) == 1:
		q.Pipeline = allowed[0]
		return s.opt.Store.List(ctx, q)
	}
	if q.Cursor != "" {
		if _, err := parseCursor(q.Cursor); err != nil {
			return nil, "", err
		}
	}
	var all []*approvals.Gate
	more := false // some pipeline has gates past what it returned
	for _, p := range allowed {
		pq := q
		pq.Pipeline = p
		gs, next, err := s.opt.Store.List(ctx, pq)
		if err != nil {
			return nil, "", err
		}
		all = append(all, gs...)
		more = more || next != ""
	}
	// The store's order: created descending, then id descending.
	slices.SortFunc(all, func(a, b *approvals.Gate) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	switch {
	case len(all) > q.Limit:
		all = all[:q.Limit]
	case !more || len(all) == 0:
		return all, "", nil
	}
	return all, cursorAfter(all[len(all)-1]), nil
}

// cursorAfter is the List cursor just past g, in the store's format
// ("<created ms>:<id>"; TestAPIList pages through merged lists, which
// would fail with ErrBadCursor if the format changed).
func cursorAfter(g *approvals.Gate) string {
	return strconv.FormatFloat(float64(g.CreatedAt.UnixMilli()), 'f', -1, 64) + ":" + g.ID
}

func parseCursor(c string) (float64, error) {
	sc, id, ok := strings.Cut(c, ":")
	f, err := strconv.ParseFloat(sc, 64)
	if !ok || err != nil || id == "" {
		return 0, approvals.ErrBadCursor
	}
	return f, nil
}
