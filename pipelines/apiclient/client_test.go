package apiclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
	"github.com/gatebot/gatebot/pipelines/pipelinestest"
	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

const token = apiclient.Secret("tok-very-secret-123")

func newClient(t *testing.T, base string, mod func(*apiclient.Options)) (*apiclient.Client, *pipelinestest.SyncBuffer) {
	t.Helper()
	logger, buf := pipelinestest.Logger()
	opts := apiclient.Options{
		Provider: "fake",
		BaseURL:  base,
		Logger:   logger,
		Authorize: func(r *http.Request) error {
			r.Header.Set("X-Token", token.Reveal())
			return nil
		},
		Secrets: func() []apiclient.Secret { return []apiclient.Secret{token} },
		ParseError: func(b []byte) (string, string) {
			var e struct{ Code, Message string }
			_ = json.Unmarshal(b, &e)
			return e.Code, e.Message
		},
		Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
	}
	if mod != nil {
		mod(&opts)
	}
	c, err := apiclient.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, buf
}

func TestPath(t *testing.T) {
	tests := []struct {
		tmpl    string
		params  []string
		want    string
		wantErr bool
	}{
		{"/orgs/{org}/apps/{app}", []string{"acme", "api"}, "/orgs/acme/apps/api", false},
		{"/a/{x}/b", []string{"with space/slash"}, "/a/with%20space%2Fslash/b", false},
		{"/a/{x}", []string{".."}, "", true},
		{"/a/{x}", []string{"."}, "", true},
		{"/a/{x}", []string{""}, "", true},
		{"/a/{x}", nil, "", true},
		{"/a/{x}", []string{"1", "2"}, "", true},
		{"/a/{x", []string{"1"}, "", true},
		{"/plain", nil, "/plain", false},
	}
	for _, tt := range tests {
		got, err := apiclient.Path(tt.tmpl, tt.params...)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("Path(%q, %q) = %q, %v; want %q, err=%v", tt.tmpl, tt.params, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"120", 120 * time.Second, true},
		{" 0 ", 0, true},
		{"-1", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"Fri, 02 Jan 2026 03:05:05 GMT", time.Minute, true},
		{"Fri, 02 Jan 2026 03:00:00 GMT", 0, true},
		{"99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		got, ok := apiclient.ParseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestSecretMasks(t *testing.T) {
	type cfg struct {
		Token apiclient.Secret `yaml:"token" json:"token"`
	}
	var c cfg
	if err := yaml.Unmarshal([]byte("token: "+token.Reveal()), &c); err != nil {
		t.Fatal(err)
	}
	if c.Token != token {
		t.Fatalf("yaml decode: got %q", c.Token.Reveal())
	}
	logger, buf := pipelinestest.Logger()
	logger.Info("cfg", "token", c.Token, "cfg", c)
	js, _ := json.Marshal(c)
	ys, _ := yaml.Marshal(c)
	texts := []string{
		fmt.Sprint(c.Token), fmt.Sprintf("%v %+v %#v %s", c, c, c, c.Token), buf.String(), string(js), string(ys),
	}
	pipelinestest.AssertNoSecret(t, token.Reveal(), texts...)
	if !strings.Contains(string(js), "[REDACTED]") {
		t.Errorf("json = %s, want the mask", js)
	}
	var back cfg
	if err := json.Unmarshal([]byte(`{"token":"`+token.Reveal()+`"}`), &back); err != nil || back.Token != token {
		t.Errorf("json decode = %q, %v", back.Token.Reveal(), err)
	}
}

func TestDo(t *testing.T) {
	type answer struct{ ID string }
	tests := []struct {
		name      string
		status    int
		header    map[string]string
		body      string
		v         bool
		want      *pipelines.APIError // nil: success
		wantID    string
		malformed bool
		temporary bool
	}{
		{name: "201 decoded", status: 201, body: `{"id":"r1"}`, v: true, wantID: "r1"},
		{name: "204 no body", status: 204, v: true},
		{name: "200 empty body without v", status: 200},
		{name: "200 text body without v", status: 200, body: "success"},
		{name: "200 malformed", status: 200, body: `{"id":`, v: true, malformed: true,
			want: &pipelines.APIError{Provider: "fake", Op: "op", StatusCode: 200}},
		{name: "200 empty with v", status: 200, v: true, malformed: true,
			want: &pipelines.APIError{Provider: "fake", Op: "op", StatusCode: 200}},
		{name: "404 provider body", status: 404, body: `{"code":"E-404","message":"no such pipeline"}`,
			want: &pipelines.APIError{Provider: "fake", Op: "op", StatusCode: 404, Code: "E-404", Message: "no such pipeline"}},
		{name: "400 echoes token", status: 400, body: `{"code":"E-1","message":"bad token ` + token.Reveal() + `"}`,
			want: &pipelines.APIError{Provider: "fake", Op: "op", StatusCode: 400, Code: "E-1", Message: "bad token [REDACTED]"}},
		{name: "500 plain text", status: 500, body: "upstream broke\n", temporary: true,
			want: &pipelines.APIError{Provider: "fake", Op: "op", StatusCode: 500, Message: "upstream broke"}},
		{name: "502 html", status: 502, header: map[string]string{"Content-Type": "text/html"}, body: "<html>bad</html>", temporary: true,
			want: &pipelines.APIError{Provider: "fake", Op: "op", StatusCode: 502, Message: "Bad Gateway"}},
		{name: "429 retry-after seconds", status: 429, header: map[string]string{"Retry-After": "7"}, temporary: true,
			want: &pipelines.APIError{Provider: "fake", Op: "op", StatusCode: 429, Message: "Too Many Requests", RetryAfter: 7 * time.Second}},
		{name: "503 retry-after date", status: 503, header: map[string]string{"Retry-After": "Fri, 02 Jan 2026 03:04:35 GMT"}, temporary: true,
			want: &pipelines.APIError{Provider: "fake", Op: "op", StatusCode: 503, Message: "Service Unavailable", RetryAfter: 30 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if got := r.Header.Get("X-Token"); got != token.Reveal() {
					t.Errorf("X-Token = %q", got)
				}
				if r.URL.Path != "/prefix/a/b" {
					t.Errorf("path = %q", r.URL.Path)
				}
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			c, logs := newClient(t, srv.URL+"/prefix/", nil)
			req, err := c.NewRequest(t.Context(), "GET", "/a/b", nil)
			if err != nil {
				t.Fatal(err)
			}
			var a answer
			var v any
			if tt.v {
				v = &a
			}
			resp, err := c.Do(req, "op", v)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Do: %v", err)
				}
				if a.ID != tt.wantID || resp.StatusCode != tt.status || string(resp.Body) != tt.body {
					t.Errorf("got %+v, %d %q", a, resp.StatusCode, resp.Body)
				}
				return
			}
			var ae *pipelines.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *APIError", err)
			}
			if diff := cmp.Diff(tt.want, ae, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Err" }, cmp.Ignore())); diff != "" {
				t.Errorf("APIError (-want +got):\n%s", diff)
			}
			if got := errors.Is(err, apiclient.ErrMalformedResponse); got != tt.malformed {
				t.Errorf("malformed = %v, want %v", got, tt.malformed)
			}
			if ae.Temporary() != tt.temporary {
				t.Errorf("Temporary() = %v", ae.Temporary())
			}
			pipelinestest.AssertNoSecret(t, token.Reveal(), err.Error(), logs.String())
		})
	}
}

func TestDoErrorBodyCapped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		_, _ = io.WriteString(w, strings.Repeat("x", 10*apiclient.MaxErrorBody))
	}))
	defer srv.Close()
	c, _ := newClient(t, srv.URL, nil)
	req, _ := c.NewRequest(t.Context(), "GET", "/", nil)
	resp, err := c.Do(req, "op", nil)
	if err == nil || len(resp.Body) != apiclient.MaxErrorBody {
		t.Fatalf("err = %v, body len %d", err, len(resp.Body))
	}
	var ae *pipelines.APIError
	if errors.As(err, &ae); len(ae.Message) > apiclient.MaxMessage {
		t.Errorf("message length %d", len(ae.Message))
	}
}

func TestDoTimeout(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // lets net/http notice the client leaving
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer srv.Close()
	defer close(stop)
	c, logs := newClient(t, srv.URL, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, _ := c.NewRequest(ctx, "POST", "/x?token="+token.Reveal(), map[string]string{"a": "<b>"})
	_, err := c.Do(req, "op", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if !pipelines.IsTemporary(err) {
		t.Errorf("timeout not temporary")
	}
	pipelinestest.AssertNoSecret(t, token.Reveal(), err.Error(), logs.String())
}

func TestForeignHost(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("credentials reached another host: %v", r.Header)
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusFound)
	}))
	defer srv.Close()
	c, _ := newClient(t, srv.URL, nil)
	if _, err := c.NewRequest(t.Context(), "GET", other.URL+"/x", nil); !errors.Is(err, apiclient.ErrForeignHost) {
		t.Errorf("absolute foreign URL: err = %v", err)
	}
	if _, err := c.NewRequest(t.Context(), "GET", srv.URL+"/x", nil); err != nil {
		t.Errorf("absolute same-host URL: %v", err)
	}
	req, _ := c.NewRequest(t.Context(), "GET", "/x", nil)
	if _, err := c.Do(req, "op", nil); !errors.Is(err, apiclient.ErrForeignHost) {
		t.Errorf("redirect: err = %v", err)
	}
}

func TestNewRequestBodies(t *testing.T) {
	c, _ := newClient(t, "https://api.example.com/base", func(o *apiclient.Options) { o.ContentType = "application/json;charset=utf8" })
	tests := []struct {
		name, wantBody, wantType string
		body                     any
	}{
		{"json", `{"a":"<b>"}`, "application/json;charset=utf8", map[string]string{"a": "<b>"}},
		{"form", "a=1&b=x+y", "application/x-www-form-urlencoded", map[string][]string{"a": {"1"}, "b": {"x y"}}},
		{"reader", "raw", "", strings.NewReader("raw")},
		{"none", "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.body
			if m, ok := body.(map[string][]string); ok {
				body = urlValues(m)
			}
			req, err := c.NewRequest(t.Context(), "POST", "/p?q=1", body)
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			if req.Body != nil {
				got, _ = io.ReadAll(req.Body)
			}
			if string(got) != tt.wantBody || req.Header.Get("Content-Type") != tt.wantType {
				t.Errorf("body %q type %q", got, req.Header.Get("Content-Type"))
			}
			if req.URL.String() != "https://api.example.com/base/p?q=1" {
				t.Errorf("url = %s", req.URL)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	for _, base := range []string{"", "ftp://x", "https://", "https://u:p@h", "https://h?x=1", "://bad"} {
		if _, err := apiclient.New(apiclient.Options{Provider: "p", BaseURL: base}); err == nil {
			t.Errorf("base %q accepted", base)
		}
	}
	if _, err := apiclient.New(apiclient.Options{BaseURL: "https://h"}); err == nil {
		t.Error("missing provider accepted")
	}
}

func TestTruncate(t *testing.T) {
	if got := apiclient.Truncate("héllo", 4); got != "h…" {
		t.Errorf("Truncate = %q", got)
	}
	if got := apiclient.Truncate("abc", 3); got != "abc" {
		t.Errorf("Truncate = %q", got)
	}
}

func TestAppend(t *testing.T) {
	got, err := apiclient.Append("/v1/runs", "r 1", "abort")
	if err != nil || got != "/v1/runs/r%201/abort" {
		t.Fatalf("Append = %q, %v", got, err)
	}
	for _, bad := range []string{"", ".", ".."} {
		if _, err := apiclient.Append("/v1/runs", bad); err == nil {
			t.Errorf("Append accepted segment %q", bad)
		}
	}
}

func TestHeaderToken(t *testing.T) {
	r, _ := http.NewRequest(http.MethodGet, "https://api.example/", nil)
	apiclient.BearerToken("s3cret").Authorize(r)
	apiclient.HeaderToken{Header: "x-yunxiao-token", Token: "pt-1"}.Authorize(r)
	if got := r.Header.Get("Authorization"); got != "Bearer s3cret" {
		t.Errorf("Authorization = %q", got)
	}
	if got := r.Header.Get("x-yunxiao-token"); got != "pt-1" {
		t.Errorf("x-yunxiao-token = %q", got)
	}
	if s := apiclient.BearerToken("s3cret").Secrets(); len(s) != 1 || s[0].Reveal() != "s3cret" {
		t.Errorf("Secrets = %v", s)
	}
}
