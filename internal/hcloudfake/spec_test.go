package hcloudfake_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/sortie/sortie/internal/hcloudfake"
)

// A request the real API rejects must fail a test that validates against
// the spec: here, one without a token.
func TestSpecFlagsRequestWithoutToken(t *testing.T) {
	rec := &recordingTB{TB: t}
	f := hcloudfake.New(hcloudfake.WithSpecValidation(rec, ""))
	f.Start()
	t.Cleanup(f.Close)

	_, resp, err := client(f, "", 0).Server.List(ctxT(t), hcloud.ServerListOpts{})
	wantAPIError(t, err, hcloud.ErrorCodeUnauthorized)
	if resp.StatusCode != http.StatusUnauthorized || resp.Meta.Ratelimit.Limit != 3600 {
		t.Errorf("401: status %d, rate limit %+v", resp.StatusCode, resp.Meta.Ratelimit)
	}
	if v := rec.violations(); !strings.Contains(v, "Authorization header") || !strings.Contains(v, "request violates") {
		t.Errorf("violations: got %q, want the missing Authorization header", v)
	}
	if v := rec.violations(); strings.Contains(v, "response violates") {
		t.Errorf("the 401 answer itself should match the spec: %s", v)
	}
}

func TestWrongToken(t *testing.T) {
	f, _ := start(t, hcloudfake.WithToken("right"))
	_, _, err := client(f, "wrong", 0).Server.List(ctxT(t), hcloud.ServerListOpts{})
	wantAPIError(t, err, hcloud.ErrorCodeUnauthorized)
}

// haltTB turns Skip and Fatal into a panic the test can recover, to see
// which one WithSpecValidation chose.
type haltTB struct {
	testing.TB
	how string
}

func (h *haltTB) Skip(...any) { h.how = "skip"; panic(h) }

func (h *haltTB) Fatal(...any) { h.how = "fatal"; panic(h) }

func TestSpecMissing(t *testing.T) {
	tests := []struct{ ci, want string }{
		{"", "skip"},
		{"false", "skip"},
		{"true", "fatal"},
	}
	for _, tt := range tests {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			t.Setenv(hcloudfake.SpecEnv, t.TempDir()+"/absent.json")
			h := &haltTB{TB: t}
			func() {
				defer func() { _ = recover() }()
				hcloudfake.WithSpecValidation(h, "")
			}()
			if h.how != tt.want {
				t.Errorf("got %q, want %q", h.how, tt.want)
			}
		})
	}
}

func TestUnknownPath(t *testing.T) {
	f := hcloudfake.New()
	f.Start()
	t.Cleanup(f.Close)
	c := client(f, "test-token", 0)
	req, err := c.NewRequest(ctxT(t), "GET", "/volumes", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Do(req, nil)
	wantAPIError(t, err, hcloud.ErrorCodeNotFound)
}
