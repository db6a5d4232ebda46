package deploy_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// metricLabels is every metric gatebot exports and its labels: the
// contract between the metrics code, this dashboard and the alerts in
// docs/operations.md.
var metricLabels = map[string][]string{
	"gatebot_activities_total":               {"type", "outcome"},
	"gatebot_auth_failures_total":            {"reason"},
	"gatebot_refused_total":                  {"kind"},
	"gatebot_invoke_duration_seconds":        {},
	"gatebot_gate_transitions_total":         {"pipeline", "state"},
	"gatebot_open_gates":                     {"state"},
	"gatebot_provider_calls_total":           {"provider", "op", "outcome"},
	"gatebot_provider_call_duration_seconds": {"provider", "op"},
	"gatebot_connector_calls_total":          {"op", "outcome"},
	"gatebot_connector_retries_total":        {},
	"gatebot_connector_throttled_total":      {},
	"gatebot_outbox_depth":                   {"kind"},
	"gatebot_outbox_oldest_seconds":          {"kind"},
	"gatebot_redis_errors_total":             {},
	"gatebot_build_info":                     {"version", "goversion"},
	"gatebot_replicas":                       {},
	"gatebot_replica_configs":                {},
}

// histograms are exported as _bucket, _sum and _count series.
var histograms = []string{"gatebot_invoke_duration_seconds", "gatebot_provider_call_duration_seconds"}

// Labels every series has from the scrape, not from gatebot.
var scrapeLabels = []string{"job", "instance", "le"}

type dashboard struct {
	Title      string `json:"title"`
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// series resolves a series name in an expression to its metric.
func series(name string) (string, bool) {
	if _, ok := metricLabels[name]; ok && !slices.Contains(histograms, name) {
		return name, true
	}
	for _, h := range histograms {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if name == h+suffix {
				return h, true
			}
		}
	}
	return "", false
}

var (
	metricRef = regexp.MustCompile(`\bgatebot_[a-z_]+`)
	// by (a, b) and label matchers {a="x", b!~"y"}.
	byClause = regexp.MustCompile(`\bby \(([^)]*)\)`)
	matcher  = regexp.MustCompile(`([a-z_]+)\s*(=~|!~|!=|=)\s*"`)
)

func TestGrafanaDashboard(t *testing.T) {
	var d dashboard
	if err := json.Unmarshal(read(t, "grafana/gatebot.json"), &d); err != nil {
		t.Fatalf("grafana/gatebot.json is not valid JSON: %v", err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("title %q, uid %q: both are needed to import and link the dashboard", d.Title, d.UID)
	}
	var panels []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			panels = append(panels, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	used := map[string]bool{}
	exprs := 0
	for _, p := range panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs++
			for _, e := range checkExpr(p.Title, tg.Expr, used) {
				t.Error(e)
			}
		}
	}
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			for _, e := range checkExpr("variable "+v.Name, q["query"].(string), used) {
				t.Error(e)
			}
		}
	}
	if exprs == 0 {
		t.Fatal("the dashboard has no queries")
	}
	var unused []string
	for name := range metricLabels {
		if !used[name] {
			unused = append(unused, name)
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		t.Errorf("no panel shows %v", unused)
	}
}

// checkExpr lists what is wrong with expr: a name gatebot does not
// export, or a label its metrics do not have.
func checkExpr(where, expr string, used map[string]bool) []string {
	var errs []string
	names := metricRef.FindAllString(expr, -1)
	if len(names) == 0 {
		errs = append(errs, fmt.Sprintf("%s: %q uses no gatebot metric", where, expr))
	}
	labels := slices.Clone(scrapeLabels)
	for _, n := range names {
		m, ok := series(n)
		if !ok {
			errs = append(errs, fmt.Sprintf("%s: %q refers to %s, which gatebot does not export", where, expr, n))
			continue
		}
		used[m] = true
		labels = append(labels, metricLabels[m]...)
	}
	var refs []string
	for _, b := range byClause.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(b[1], ",") {
			refs = append(refs, strings.TrimSpace(l))
		}
	}
	for _, m := range matcher.FindAllStringSubmatch(expr, -1) {
		refs = append(refs, m[1])
	}
	for _, l := range refs {
		if !slices.Contains(labels, l) {
			errs = append(errs, fmt.Sprintf("%s: %q uses label %q, which %v do not have", where, expr, l, names))
		}
	}
	return errs
}

// TestDashboardCheckCatchesMistakes feeds checkExpr the mistakes it is
// there to catch, so the test above cannot pass by checking nothing.
func TestDashboardCheckCatchesMistakes(t *testing.T) {
	for _, expr := range []string{
		`rate(gatebot_requests_total[5m])`,
		`sum by (tenant) (rate(gatebot_refused_total[5m]))`,
		`gatebot_open_gates{pipeline="x"}`,
		`rate(gatebot_provider_calls_total_bucket[5m])`,
		`up`,
	} {
		if len(checkExpr("probe", expr, map[string]bool{})) == 0 {
			t.Errorf("checkExpr accepted %q", expr)
		}
	}
}
