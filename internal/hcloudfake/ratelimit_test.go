package hcloudfake_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/sortie/sortie/internal/hcloudfake"
)

func TestRateLimitHeadersByDefault(t *testing.T) {
	clk := newClock()
	_, c := start(t, hcloudfake.WithClock(clk.Now))
	ctx := ctxT(t)
	for i := 1; i <= 3; i++ {
		_, resp, err := c.Location.List(ctx, hcloud.LocationListOpts{})
		if err != nil {
			t.Fatal(err)
		}
		rl := resp.Meta.Ratelimit
		if rl.Limit != 3600 || rl.Remaining != 3600-i {
			t.Errorf("request %d: got limit %d remaining %d, want 3600 and %d", i, rl.Limit, rl.Remaining, 3600-i)
		}
		// One request a second refills the budget: i requests short → full in i seconds.
		if want := clk.Now().Add(time.Duration(i) * time.Second); !rl.Reset.Equal(want) {
			t.Errorf("request %d: reset %v, want %v", i, rl.Reset, want)
		}
	}
	clk.Advance(2 * time.Second)
	_, resp, _ := c.Location.List(ctx, hcloud.LocationListOpts{})
	if got, want := resp.Meta.Ratelimit.Remaining, 3600-2; got != want {
		t.Errorf("after 2 s: remaining %d, want %d", got, want)
	}
}

func TestRateLimitExhausted(t *testing.T) {
	clk := newClock()
	f, _ := start(t, hcloudfake.WithClock(clk.Now), hcloudfake.WithRateLimit(3, time.Hour))
	c := client(f, "test-token", 0)
	ctx := ctxT(t)
	for i := range 3 {
		if _, _, err := c.ServerType.List(ctx, hcloud.ServerTypeListOpts{}); err != nil {
			t.Fatalf("request %d within budget: %v", i, err)
		}
	}
	_, resp, err := c.ServerType.List(ctx, hcloud.ServerTypeListOpts{})
	wantAPIError(t, err, hcloud.ErrorCodeRateLimitExceeded)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Meta.Ratelimit.Remaining != 0 {
		t.Errorf("429: status %d remaining %d", resp.StatusCode, resp.Meta.Ratelimit.Remaining)
	}
	if want := clk.Now().Add(time.Hour); !resp.Meta.Ratelimit.Reset.Equal(want) {
		t.Errorf("reset: got %v, want %v", resp.Meta.Ratelimit.Reset, want)
	}
	clk.Advance(20 * time.Minute) // 3 an hour: one more request
	if _, _, err := c.ServerType.List(ctx, hcloud.ServerTypeListOpts{}); err != nil {
		t.Fatalf("after a refill: %v", err)
	}
	if _, _, err := c.ServerType.List(ctx, hcloud.ServerTypeListOpts{}); !hcloud.IsError(err, hcloud.ErrorCodeRateLimitExceeded) {
		t.Errorf("second request after one refill: got %v, want rate_limit_exceeded", err)
	}
}
