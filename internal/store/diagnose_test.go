package store_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/store"
	"github.com/sortie/sortie/internal/testenv"
)

// TestClockSkewFromDate: ClockSkew reads the store's Date header, from a
// refusal as well as from a success.
func TestClockSkewFromDate(t *testing.T) {
	tests := []struct {
		name   string
		offset time.Duration
		status int
	}{
		{"behind, refused", -10 * time.Minute, http.StatusForbidden},
		{"ahead, ok", 2 * time.Minute, http.StatusOK},
		{"in step", 0, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Date", time.Now().Add(tt.offset).UTC().Format(http.TimeFormat))
				w.WriteHeader(tt.status)
			}))
			defer srv.Close()
			s := newS3(t, store.Config{Endpoint: srv.URL, Bucket: "b-skew", PathStyle: true, AccessKeyID: "k", SecretAccessKey: "s"})
			got, err := s.ClockSkew(testContext(t))
			if err != nil {
				t.Fatal(err)
			}
			if d := got - tt.offset; d < -1500*time.Millisecond || d > 1500*time.Millisecond {
				t.Errorf("skew = %v, want %v within 1.5 s", got, tt.offset)
			}
		})
	}
}

// TestClockSkewMinIO: MinIO on this machine shares its clock, even when it
// refuses the credentials.
func TestClockSkewMinIO(t *testing.T) {
	cfg := testenv.MinIO(t)
	bad := cfg
	bad.SecretAccessKey = "not-the-secret"
	for name, c := range map[string]store.Config{"good": cfg, "wrong secret": bad} {
		got, err := newS3(t, c).ClockSkew(testContext(t))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got < -1500*time.Millisecond || got > 1500*time.Millisecond {
			t.Errorf("%s: skew = %v, want about 0", name, got)
		}
	}
}

// TestClockSkewUnreachable: no answer, no clock.
func TestClockSkewUnreachable(t *testing.T) {
	s := newS3(t, store.Config{Endpoint: "http://" + testenv.ClosedAddr(t), Bucket: "b-skew", PathStyle: true, AccessKeyID: "k", SecretAccessKey: "s"})
	if _, err := s.ClockSkew(testContext(t)); err == nil {
		t.Error("ClockSkew of an endpoint that does not answer succeeded")
	}
}

// TestClassify: each way a store refuses is told apart by its error code,
// against MinIO.
func TestClassify(t *testing.T) {
	cfg := testenv.MinIO(t)
	ctx := testContext(t)
	mod := func(f func(*store.Config)) store.Config { c := cfg; f(&c); return c }
	tests := []struct {
		name string
		cfg  store.Config
		want store.Problem
	}{
		{"unknown key", mod(func(c *store.Config) { c.AccessKeyID = "no-such-key" }), store.ProblemUnknownKey},
		{"wrong secret", mod(func(c *store.Config) { c.SecretAccessKey = "wrong-secret" }), store.ProblemBadSecret},
		{"no bucket", mod(func(c *store.Config) { c.Bucket = "no-such-bucket-here" }), store.ProblemNoBucket},
		{"unreachable", mod(func(c *store.Config) { c.Endpoint = "http://" + testenv.ClosedAddr(t) }), store.ProblemUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := newS3(t, tt.cfg).Put(ctx, "doctor/x", bytes.NewReader([]byte("x")))
			if err == nil {
				t.Fatal("put succeeded")
			}
			if got := store.Classify(err); got != tt.want {
				t.Errorf("Classify(%v) = %d, want %d", err, got, tt.want)
			}
		})
	}
	if err := newS3(t, cfg).Put(ctx, "doctor/x", bytes.NewReader([]byte("x"))); err != nil {
		t.Fatalf("put with the right config: %v", err)
	}
}
