package hcloudfake

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// collectTB records Errorf calls instead of failing.
type collectTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (c *collectTB) Errorf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

// The middleware must catch answers the real API would never give.
func TestSpecFlagsBadResponses(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"server without required fields", 200, `{"server":{"id":1,"name":"x"}}`, "missing properties"},
		{"list without meta", 200, `{"servers":[]}`, "meta"},
		{"error without message", 404, `{"error":{"code":"not_found"}}`, "message"},
		{"undocumented status", 302, ``, "302"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &collectTB{TB: t}
			check := WithSpecValidation(rec, "")
			var cfg config
			check(&cfg)
			path := "/v1/servers/1"
			if strings.HasPrefix(tt.body, `{"servers"`) {
				path = "/v1/servers"
			}
			h := cfg.spec.middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			req := httptest.NewRequest("GET", path, nil)
			req.Header.Set("Authorization", "Bearer x")
			h.ServeHTTP(httptest.NewRecorder(), req)
			if got := strings.Join(rec.errs, "\n"); !strings.Contains(got, tt.want) {
				t.Errorf("violations: got %q, want one mentioning %q", got, tt.want)
			}
		})
	}
}

// BenchmarkParseSpec measures a cold parse of the spec, errata included
// (tests pay it once per process).
func BenchmarkParseSpec(b *testing.B) {
	path, _ := resolveSpecPath("")
	WithSpecValidation(b, path)
	for b.Loop() {
		if _, err := parseSpec(path); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidatedCreate measures a server create through the validating
// middleware: request and response checked against the spec.
func BenchmarkValidatedCreate(b *testing.B) {
	f := New(WithSpecValidation(b, ""), WithRateLimit(1<<30, 1))
	body := `{"name":"n%d","server_type":"cx23","image":"debian-12","location":"fsn1",` +
		`"labels":{"run":"r"},"user_data":"#cloud-config\n"}`
	i := 0
	for b.Loop() {
		i++
		req := httptest.NewRequest("POST", "/v1/servers", strings.NewReader(fmt.Sprintf(body, i)))
		req.Header.Set("Authorization", "Bearer x")
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		f.handler.ServeHTTP(w, req)
		if w.Code != http.StatusCreated {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	f.Close()
}
