package pipelinestest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatebot/gatebot/pipelines/pipelinestest"
)

func TestRenderRequest(t *testing.T) {
	r := httptest.NewRequest("POST", "/a/b?x=1&y=2", strings.NewReader(`{"b":1,"a":[true]}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept-Encoding", "gzip")
	r.Header.Add("X-Multi", "1")
	r.Header.Add("X-Multi", "2")
	got := pipelinestest.RenderRequest(r)
	want := "POST /a/b?x=1&y=2\nContent-Type: application/json\nX-Multi: 1\nX-Multi: 2\n\n{\n  \"b\": 1,\n  \"a\": [\n    true\n  ]\n}\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	r = httptest.NewRequest("GET", "/t", strings.NewReader("not json"))
	if got := pipelinestest.RenderRequest(r); got != "GET /t\n\nnot json\n" {
		t.Errorf("text body: %q", got)
	}
}

func TestServerPlaysExchanges(t *testing.T) {
	srv := pipelinestest.NewServer(t,
		pipelinestest.Exchange{Golden: "example", Status: 201, Header: http.Header{"X-A": {"b"}}, Body: "ok"},
	)
	req, _ := http.NewRequest("PUT", srv.URL+"/things/1?dry=true", strings.NewReader(`{"name":"x"}`))
	req.Header.Set("Authorization", "Bearer t")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 201 || res.Header.Get("X-A") != "b" {
		t.Errorf("response %d %v", res.StatusCode, res.Header)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("recorded %d requests", n)
	}
}

func TestAssertNoSecretDetects(t *testing.T) {
	ft := &fakeT{TB: t}
	pipelinestest.AssertNoSecret(ft, "s3cret", "clean", "has s3cret inside")
	if !ft.failed {
		t.Error("leak not reported")
	}
}

type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Errorf(string, ...any) { f.failed = true }

func TestCheckGoldenDetectsDifference(t *testing.T) {
	if pipelinestest.Updating() {
		t.Skip("-update rewrites goldens; nothing to compare")
	}
	ft := &fakeT{TB: t}
	pipelinestest.CheckGolden(ft, "example", []byte("PUT /things/2\n"))
	if !ft.failed {
		t.Error("a request differing from its golden file was not reported")
	}
	ft = &fakeT{TB: t}
	pipelinestest.CheckGolden(ft, "no-such-golden", []byte("x"))
	if !ft.failed {
		t.Error("a missing golden file was not reported")
	}
}

func TestServerFillsInBaseURL(t *testing.T) {
	srv := pipelinestest.NewServer(t,
		pipelinestest.Exchange{Golden: "example", Status: 302,
			Header: http.Header{"Location": {pipelinestest.BaseURL + "/next"}},
			Body:   `{"self":"` + pipelinestest.BaseURL + `/things/1"}`},
	)
	req, _ := http.NewRequest("PUT", srv.URL+"/things/1?dry=true", strings.NewReader(`{"name":"x"}`))
	req.Header.Set("Authorization", "Bearer t")
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if got, want := res.Header.Get("Location"), srv.URL+"/next"; got != want {
		t.Errorf("Location %q, want %q", got, want)
	}
	if got, want := string(body), `{"self":"`+srv.URL+`/things/1"}`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
}
