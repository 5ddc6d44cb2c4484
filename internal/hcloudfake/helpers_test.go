package hcloudfake_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/sortie/sortie/internal/hcloudfake"
)

// start runs a fake with spec validation on and returns it with a real
// hcloud-go client pointed at it. The client polls and retries quickly.
func start(t *testing.T, opts ...hcloudfake.Option) (*hcloudfake.Server, *hcloud.Client) {
	t.Helper()
	opts = append([]hcloudfake.Option{hcloudfake.WithSpecValidation(t, "")}, opts...)
	f := hcloudfake.New(opts...)
	f.Start()
	t.Cleanup(f.Close)
	return f, client(f, "test-token", 5)
}

func client(f *hcloudfake.Server, token string, retries int) *hcloud.Client {
	return hcloud.NewClient(
		hcloud.WithEndpoint(f.URL()),
		hcloud.WithToken(token),
		hcloud.WithApplication("hcloudfake-test", ""),
		hcloud.WithPollOpts(hcloud.PollOpts{BackoffFunc: hcloud.ConstantBackoff(2 * time.Millisecond)}),
		hcloud.WithRetryOpts(hcloud.RetryOpts{BackoffFunc: hcloud.ConstantBackoff(time.Millisecond), MaxRetries: retries}),
	)
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// createOpts is a valid create request; name must be unique per fake.
func createOpts(name string) hcloud.ServerCreateOpts {
	return hcloud.ServerCreateOpts{
		Name:       name,
		ServerType: &hcloud.ServerType{Name: "cx23"},
		Image:      &hcloud.Image{Name: "debian-12"},
		Location:   &hcloud.Location{Name: "fsn1"},
		Labels:     map[string]string{"sortie.dev/owner": "test", "run": name},
		UserData:   "#cloud-config\nruncmd:\n- [touch, /root/ok]\n",
	}
}

// mustCreate creates a server and waits for its actions.
func mustCreate(t *testing.T, c *hcloud.Client, opts hcloud.ServerCreateOpts) *hcloud.Server {
	t.Helper()
	ctx := ctxT(t)
	res, _, err := c.Server.Create(ctx, opts)
	if err != nil {
		t.Fatalf("create %q: %v", opts.Name, err)
	}
	if err := c.Action.WaitFor(ctx, append([]*hcloud.Action{res.Action}, res.NextActions...)...); err != nil {
		t.Fatalf("wait for create %q: %v", opts.Name, err)
	}
	return res.Server
}

// wantAPIError checks that err is an API error with the given code.
func wantAPIError(t *testing.T, err error, code hcloud.ErrorCode) hcloud.Error {
	t.Helper()
	var apiErr hcloud.Error
	if !errors.As(err, &apiErr) || apiErr.Code != code {
		t.Fatalf("got error %v, want API error %q", err, code)
	}
	return apiErr
}

// clock is a manual clock for WithClock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// recordingTB stands in for a test in WithSpecValidation and collects the
// violations instead of failing.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recordingTB) violations() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.errs, "\n")
}
