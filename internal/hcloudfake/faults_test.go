package hcloudfake_test

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/sortie/sortie/internal/hcloudfake"
)

func TestFailCreate(t *testing.T) {
	tests := []struct {
		code       hcloud.ErrorCode
		status     int
		serverType string
		location   string
	}{
		{hcloud.ErrorCodeResourceUnavailable, http.StatusPreconditionFailed, "cx23", "fsn1"},
		{hcloud.ErrorCodePlacementError, http.StatusUnprocessableEntity, "", "fsn1"},
		{hcloud.ErrorCodeResourceLimitExceeded, http.StatusForbidden, "cx23", ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			f, c := start(t)
			ctx := ctxT(t)
			f.FailCreate(tt.serverType, tt.location, string(tt.code), 1)

			elsewhere := createOpts("other-place")
			elsewhere.Location, elsewhere.ServerType = &hcloud.Location{Name: "nbg1"}, &hcloud.ServerType{Name: "cpx22"}
			if tt.serverType == "" || tt.location == "" {
				elsewhere.Location = &hcloud.Location{Name: "fsn1"}
				elsewhere.ServerType = &hcloud.ServerType{Name: "cx23"}
			}
			_, resp, err := c.Server.Create(ctx, createOpts("first"))
			wantAPIError(t, err, tt.code)
			if resp.StatusCode != tt.status {
				t.Errorf("status: got %d, want %d", resp.StatusCode, tt.status)
			}
			if n := len(f.Servers()); n != 0 {
				t.Errorf("a failed create left %d servers", n)
			}
			mustCreate(t, c, createOpts("first")) // the fault is used up
			mustCreate(t, c, elsewhere)
		})
	}
}

func TestFailCreateOnlyMatching(t *testing.T) {
	f, c := start(t)
	f.FailCreate("cx33", "hel1", "resource_unavailable", 5)
	mustCreate(t, c, createOpts("not-matching")) // cx23 in fsn1
	opts := createOpts("matching")
	opts.ServerType, opts.Location = &hcloud.ServerType{Name: "cx33"}, &hcloud.Location{Name: "hel1"}
	_, _, err := c.Server.Create(ctxT(t), opts)
	wantAPIError(t, err, hcloud.ErrorCodeResourceUnavailable)
}

func TestFail5xx(t *testing.T) {
	f, c := start(t)
	ctx := ctxT(t)
	f.Fail5xx("POST /servers", 1)
	_, resp, err := c.Server.Create(ctx, createOpts("five"))
	wantAPIError(t, err, hcloud.ErrorCodeServerError)
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status: got %d, want 500", resp.StatusCode)
	}
	if n := len(f.Servers()); n != 0 {
		t.Fatalf("a 5xx create was processed: %d servers", n)
	}
	if _, _, err := c.Server.List(ctx, hcloud.ServerListOpts{}); err != nil {
		t.Errorf("GET /servers is not affected by a POST fault: %v", err)
	}
	mustCreate(t, c, createOpts("five"))
}

func TestFailStatusRetriedByClient(t *testing.T) {
	f, c := start(t)
	f.FailStatus("/servers", http.StatusBadGateway, "bad_gateway", 2)
	f.ResetCounters()
	mustCreate(t, c, createOpts("retried"))
	if got, want := f.RequestsBy("POST", "/servers"), 3; got != want {
		t.Errorf("POST /servers: got %d requests, want %d (two 502s retried)", got, want)
	}
}

func TestFail429(t *testing.T) {
	f, c := start(t)
	ctx := ctxT(t)
	f.Fail429(2)
	f.ResetCounters()
	if _, _, err := c.Server.List(ctx, hcloud.ServerListOpts{}); err != nil {
		t.Fatalf("hcloud-go retries 429: %v", err)
	}
	if got := f.Requests(); got != 3 {
		t.Errorf("requests: got %d, want 3", got)
	}

	f.Fail429(1)
	noRetry := client(f, "test-token", 0)
	_, resp, err := noRetry.Server.List(ctx, hcloud.ServerListOpts{})
	wantAPIError(t, err, hcloud.ErrorCodeRateLimitExceeded)
	if resp.Meta.Ratelimit.Remaining != 0 || resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("injected 429: status %d remaining %d", resp.StatusCode, resp.Meta.Ratelimit.Remaining)
	}
}

func TestLockServer(t *testing.T) {
	f, c := start(t)
	ctx := ctxT(t)
	srv := mustCreate(t, c, createOpts("locked"))
	f.LockServer(srv.ID, 2)
	for i := range 2 {
		_, resp, err := c.Server.DeleteWithResult(ctx, srv)
		wantAPIError(t, err, hcloud.ErrorCodeLocked)
		if resp.StatusCode != http.StatusLocked {
			t.Errorf("delete %d: status %d, want 423", i, resp.StatusCode)
		}
	}
	res, _, err := c.Server.DeleteWithResult(ctx, srv)
	if err != nil {
		t.Fatalf("third delete: %v", err)
	}
	if err := c.Action.WaitFor(ctx, res.Action); err != nil {
		t.Fatalf("wait: %v", err)
	}
}

func TestActionDelay(t *testing.T) {
	clk := newClock()
	f, c := start(t, hcloudfake.WithClock(clk.Now))
	ctx := ctxT(t)
	f.ActionDelay(time.Minute)

	res, _, err := c.Server.Create(ctx, createOpts("slow"))
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	clk.Advance(30 * time.Second)
	a, _, err := c.Action.GetByID(ctx, res.Action.ID)
	if err != nil || a.Status != hcloud.ActionStatusRunning || a.Progress != 50 {
		t.Fatalf("half way: got %+v, %v; want running at 50%%", a, err)
	}
	if s, _, _ := c.Server.GetByID(ctx, res.Server.ID); s.Status != hcloud.ServerStatusInitializing {
		t.Errorf("server while creating: got %q, want initializing", s.Status)
	}
	clk.Advance(30 * time.Second)
	a, _, err = c.Action.GetByID(ctx, res.Action.ID)
	if err != nil || a.Status != hcloud.ActionStatusSuccess || a.Progress != 100 || !a.Finished.Equal(clk.Now()) {
		t.Fatalf("after the delay: got %+v, %v; want success", a, err)
	}
	if s, _, _ := c.Server.GetByID(ctx, res.Server.ID); s.Status != hcloud.ServerStatusRunning {
		t.Errorf("server after create: got %q, want running", s.Status)
	}
}

func TestFailActions(t *testing.T) {
	f, c := start(t)
	ctx := ctxT(t)
	f.FailActions(2)

	res, _, err := c.Server.Create(ctx, createOpts("doomed"))
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	err = c.Action.WaitFor(ctx, res.Action)
	var actionErr hcloud.ActionError
	if !errors.As(err, &actionErr) || actionErr.Code != "action_failed" {
		t.Fatalf("wait: got %v, want an action_failed ActionError", err)
	}
	srv, _, _ := c.Server.GetByID(ctx, res.Server.ID)
	if srv == nil || srv.Status != hcloud.ServerStatusOff {
		t.Fatalf("server after a failed create: got %+v, want it kept, off", srv)
	}

	del, _, err := c.Server.DeleteWithResult(ctx, srv)
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := c.Action.WaitFor(ctx, del.Action); !errors.As(err, &actionErr) {
		t.Fatalf("wait for failing delete: got %v, want ActionError", err)
	}
	if still, _, _ := c.Server.GetByID(ctx, srv.ID); still == nil {
		t.Fatal("server gone after a failed delete")
	}
	del, _, err = c.Server.DeleteWithResult(ctx, srv)
	if err != nil || c.Action.WaitFor(ctx, del.Action) != nil {
		t.Fatalf("second delete: %v", err)
	}
}

func TestDropConnection(t *testing.T) {
	f, c := start(t)
	ctx := ctxT(t)
	f.DropConnection("POST /servers", 1)

	_, _, err := c.Server.Create(ctx, createOpts("run-7"))
	var apiErr hcloud.Error
	if err == nil || errors.As(err, &apiErr) {
		t.Fatalf("create with a dropped connection: got %v, want a transport error", err)
	}
	_, _, err = c.Server.Create(ctx, createOpts("run-7"))
	wantAPIError(t, err, hcloud.ErrorCodeUniquenessError)

	srv, _, err := c.Server.GetByName(ctx, "run-7")
	if err != nil || srv == nil {
		t.Fatalf("the dropped create did create the server: got %v, %v", srv, err)
	}
}

func TestCounters(t *testing.T) {
	f, c := start(t)
	ctx := ctxT(t)
	srv := mustCreate(t, c, createOpts("counted"))
	f.ResetCounters()
	for range 3 {
		if _, _, err := c.Server.GetByID(ctx, srv.ID); err != nil {
			t.Fatal(err)
		}
	}
	_, _, _ = c.Server.GetByID(ctx, srv.ID+1000) // a 404 counts too
	if _, _, err := c.Pricing.Get(ctx); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, pattern string
		want            int
	}{
		{"GET", "/servers/{id}", 4},
		{"get", "/v1/servers/{id}", 4},
		{"GET", "/pricing", 1},
		{"POST", "/servers", 0},
	}
	for _, tt := range tests {
		if got := f.RequestsBy(tt.method, tt.pattern); got != tt.want {
			t.Errorf("RequestsBy(%q, %q): got %d, want %d", tt.method, tt.pattern, got, tt.want)
		}
	}
	if got := f.Requests(); got != 5 {
		t.Errorf("Requests: got %d, want 5", got)
	}
}

// Faults can be changed while requests are in flight; run with -race.
func TestConcurrentUse(t *testing.T) {
	f, c := start(t)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3 {
				res, _, err := c.Server.Create(ctx, createOpts(fmt.Sprintf("w%d-%d", w, i)))
				if hcloud.IsError(err, hcloud.ErrorCodeResourceUnavailable) {
					continue // injected below
				}
				if err == nil {
					err = c.Action.WaitFor(ctx, res.Action)
				}
				if err == nil {
					var del *hcloud.ServerDeleteResult
					del, _, err = c.Server.DeleteWithResult(ctx, res.Server)
					if err == nil {
						err = c.Action.WaitFor(ctx, del.Action)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range 5 {
		f.FailCreate("", "", "resource_unavailable", 1)
		f.Fail429(1)
		f.ActionDelay(time.Millisecond)
		_ = f.Servers()
		_ = f.Requests()
		f.ResetCounters()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if left := f.Servers(); len(left) != 0 {
		t.Errorf("servers left: %+v", left)
	}
}
