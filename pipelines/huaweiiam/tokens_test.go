package huaweiiam_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
	"github.com/gatebot/gatebot/pipelines/huaweiiam"
	"github.com/gatebot/gatebot/pipelines/pipelinestest"
)

const (
	password = "iam-Pa55word-5ecr3t"
	iamTok1  = "MIIfirst-iam-token-value-5ecr3t"
	iamTok2  = "MIIsecond-iam-token-value-5ecr3t"
	iamTok3  = "MIIthird-iam-token-value-5ecr3t"
)

func iamAnswer(tok string, expires string) pipelinestest.Exchange {
	return pipelinestest.Exchange{Golden: "iam-token", Status: 201,
		Header: http.Header{"X-Subject-Token": {tok}},
		Body:   `{"token":{"expires_at":"` + expires + `","methods":["password"],"catalog":[],"roles":[],"project":{"name":"cn-north-4","id":"p1"},"issued_at":"2026-03-01T12:00:00.000000Z"}}`}
}

const startOK = `{"id":286541,"pipeline_id":"caf409b1-10df-483a-b14d-7b05f7e12c88","status":4}`

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type apiErr struct {
	Status     int
	Code, Msg  string
	RetryAfter time.Duration
	Temporary  bool
}

func wantAPIErr(want apiErr) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var ae *pipelines.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("err = %v, want *pipelines.APIError", err)
		}
		if got := (apiErr{ae.StatusCode, ae.Code, ae.Message, ae.RetryAfter, ae.Temporary()}); got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}
}

// iamClient is a Client whose tokens come from a fake IAM; trigger posts
// one start action, the call every provider test repeats.
type iamClient struct {
	c *huaweiiam.Client
}

func (c iamClient) Trigger(ctx context.Context, _ pipelines.Request) (pipelines.Run, error) {
	var ans struct {
		ID apiclient.FlexString `json:"id"`
	}
	_, err := c.c.Do(ctx, http.MethodPost, "/v3/p1/pipeline/pipelines/caf409b1-10df-483a-b14d-7b05f7e12c88/action?action_id=start", "start release task", struct{}{}, &ans)
	return pipelines.Run{ID: string(ans.ID)}, err
}

func newIAMClient(t *testing.T, iamEx []pipelinestest.Exchange, ex ...pipelinestest.Exchange) (iamClient, *pipelinestest.SyncBuffer, *clock) {
	t.Helper()
	iam := pipelinestest.NewServer(t, iamEx...)
	srv := pipelinestest.NewServer(t, ex...)
	logger, logs := pipelinestest.Logger()
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	c, err := huaweiiam.NewClient(huaweiiam.Options{
		Provider: "servicestage", BaseURL: srv.URL, ContentType: "application/json;charset=utf8",
		IAM:      &huaweiiam.Config{URL: iam.URL, Domain: "acme", User: "gatebot", Password: password, Region: "cn-north-4"},
		Settings: apiclient.Settings{HTTPClient: &http.Client{}, Logger: logger, Now: clk.now},
	})
	if err != nil {
		t.Fatal(err)
	}
	return iamClient{c}, logs, clk
}

var startReq = pipelines.Request{GateID: "g_1"}

func TestIAMTokenCachedAndRefreshed(t *testing.T) {
	c, logs, clk := newIAMClient(t,
		[]pipelinestest.Exchange{iamAnswer(iamTok1, "2026-03-02T12:00:00.000000Z"), iamAnswer(iamTok2, "2026-03-03T12:00:00.000000Z")},
		pipelinestest.Exchange{Golden: "start-iam1", Body: startOK},
		pipelinestest.Exchange{Golden: "start-iam1", Body: startOK},
		pipelinestest.Exchange{Golden: "start-iam2", Body: startOK},
	)
	for range 2 {
		if _, err := c.Trigger(t.Context(), startReq); err != nil {
			t.Fatal(err)
		}
	}
	clk.add(23*time.Hour + 51*time.Minute) // inside the refresh margin before expiry
	if _, err := c.Trigger(t.Context(), startReq); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{password, iamTok1, iamTok2} {
		pipelinestest.AssertNoSecret(t, s, logs.String())
	}
}

func TestIAMSingleFlight(t *testing.T) {
	const n = 20
	ex := make([]pipelinestest.Exchange, n)
	for i := range ex {
		ex[i] = pipelinestest.Exchange{Golden: "start-iam1", Body: startOK}
	}
	c, _, _ := newIAMClient(t, []pipelinestest.Exchange{iamAnswer(iamTok1, "2026-03-02T12:00:00Z")}, ex...)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			if _, err := c.Trigger(t.Context(), startReq); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestIAM401RefreshesOnce(t *testing.T) {
	c, logs, _ := newIAMClient(t,
		[]pipelinestest.Exchange{iamAnswer(iamTok1, "2026-03-02T12:00:00Z"), iamAnswer(iamTok2, "2026-03-02T12:00:00Z"), iamAnswer(iamTok3, "2026-03-02T12:00:00Z")},
		pipelinestest.Exchange{Golden: "start-iam1", Status: 401, Body: `{"error_code":"APIGW.0301","error_msg":"Incorrect IAM authentication information: token ` + iamTok1 + ` revoked"}`},
		pipelinestest.Exchange{Golden: "start-iam2", Body: startOK},
		pipelinestest.Exchange{Golden: "start-iam2", Status: 401, Body: `{"error_code":"APIGW.0301","error_msg":"refused"}`},
		pipelinestest.Exchange{Golden: "start-iam3", Status: 401, Body: `{"error_code":"APIGW.0301","error_msg":"still refused"}`},
	)
	if _, err := c.Trigger(t.Context(), startReq); err != nil {
		t.Fatal(err)
	}
	// A 401 with a token fetched just for the retry is reported, not
	// retried in a loop.
	_, err := c.Trigger(t.Context(), startReq)
	wantAPIErr(apiErr{Status: 401, Code: "APIGW.0301", Msg: "still refused"})(t, err)
	for _, s := range []string{password, iamTok1, iamTok2, iamTok3} {
		pipelinestest.AssertNoSecret(t, s, logs.String(), err.Error())
	}
}

func TestIAMErrors(t *testing.T) {
	tests := []struct {
		name  string
		iam   pipelinestest.Exchange
		check func(*testing.T, error)
	}{
		{"wrong password", pipelinestest.Exchange{Golden: "iam-token", Status: 401, Body: `{"error":{"code":401,"message":"The username or password is wrong.","title":"Unauthorized"}}`},
			wantAPIErr(apiErr{Status: 401, Code: "401", Msg: "The username or password is wrong."})},
		{"no X-Subject-Token", pipelinestest.Exchange{Golden: "iam-token", Status: 201, Body: `{"token":{"expires_at":"2026-03-02T12:00:00Z"}}`},
			func(t *testing.T, err error) {
				if !errors.Is(err, apiclient.ErrMalformedResponse) {
					t.Errorf("err = %v", err)
				}
			}},
		{"IAM down", pipelinestest.Exchange{Golden: "iam-token", Status: 503, Header: http.Header{"Retry-After": {"4"}}},
			wantAPIErr(apiErr{Status: 503, Msg: "Service Unavailable", RetryAfter: 4 * time.Second, Temporary: true})},
		{"echoes the password", pipelinestest.Exchange{Golden: "iam-token", Status: 400, Body: `{"error":{"code":"1100","message":"bad password ` + password + `"}}`},
			wantAPIErr(apiErr{Status: 400, Code: "1100", Msg: "bad password [REDACTED]"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, logs, _ := newIAMClient(t, []pipelinestest.Exchange{tt.iam})
			_, err := c.Trigger(t.Context(), startReq)
			if err == nil {
				t.Fatal("no error")
			}
			tt.check(t, err)
			pipelinestest.AssertNoSecret(t, password, err.Error(), logs.String())
		})
	}
}
