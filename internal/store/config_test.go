package store_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie/sortie/internal/store"
	"github.com/sortie/sortie/pkg/protocol"
)

func validConfig() store.Config {
	return store.Config{
		Endpoint:        "https://fsn1.your-objectstorage.com",
		Bucket:          "sortie-runs",
		Prefix:          "sortie/prod",
		AccessKeyID:     "AKIDEXAMPLE",
		SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*store.Config)
		// want lists substrings of the error, one per problem; none
		// means valid.
		want []string
	}{
		{"valid", func(*store.Config) {}, nil},
		{"AWS, no endpoint", func(c *store.Config) { c.Endpoint = "" }, nil},
		{"prefix with slashes around", func(c *store.Config) { c.Prefix = "/sortie/" }, nil},
		{"session token", func(c *store.Config) { c.SessionToken = "tok" }, nil},
		{"all missing", func(c *store.Config) { *c = store.Config{} },
			[]string{"bucket is empty", "access key ID is empty", "secret access key is empty"}},
		{"endpoint without scheme", func(c *store.Config) { c.Endpoint = "s3.example.com" },
			[]string{"no http or https scheme"}},
		{"endpoint ftp", func(c *store.Config) { c.Endpoint = "ftp://s3.example.com" },
			[]string{"no http or https scheme"}},
		{"endpoint with query", func(c *store.Config) { c.Endpoint = "https://s3.example.com/?x=1" },
			[]string{"query or fragment"}},
		{"endpoint with credentials", func(c *store.Config) { c.Endpoint = "https://user:hunter2@s3.example.com" },
			[]string{"carries credentials"}},
		{"bucket uppercase", func(c *store.Config) { c.Bucket = "Sortie" }, []string{"not a valid bucket name"}},
		{"bucket too short", func(c *store.Config) { c.Bucket = "ab" }, []string{"not a valid bucket name"}},
		{"bucket with slash", func(c *store.Config) { c.Bucket = "a/b" }, []string{"not a valid bucket name"}},
		{"prefix with dotdot", func(c *store.Config) { c.Prefix = "a/../b" }, []string{"prefix"}},
		{"prefix with double slash", func(c *store.Config) { c.Prefix = "a//b" }, []string{"prefix"}},
		{"region with space", func(c *store.Config) { c.Region = "eu central" }, []string{"region"}},
		{"two problems", func(c *store.Config) { c.Bucket, c.AccessKeyID = "", "" },
			[]string{"bucket is empty", "access key ID is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.change(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
			if got := strings.Count(err.Error(), "\n") + 1; got != len(tt.want) {
				t.Errorf("Validate() gave %d problems (%q), want %d", got, err, len(tt.want))
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Validate() = %q carries the endpoint's password", err)
			}
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	_, err := store.New(store.Config{Bucket: "sortie"})
	if err == nil || !strings.Contains(err.Error(), "access key ID") || !strings.Contains(err.Error(), "secret access key") {
		t.Errorf("New() error = %v, want both missing credentials named", err)
	}
}

func TestFromAccess(t *testing.T) {
	a := protocol.StoreAccess{
		Mode:            protocol.AccessCredentials,
		Endpoint:        "http://127.0.0.1:9000",
		Region:          "eu-central-1",
		Bucket:          "b-1",
		Prefix:          "p",
		PathStyle:       true,
		AccessKeyID:     "id",
		SecretAccessKey: "secret",
		SessionToken:    "token",
		Expires:         time.Now(),
	}
	want := store.Config{
		Endpoint: "http://127.0.0.1:9000", Region: "eu-central-1", Bucket: "b-1", Prefix: "p",
		PathStyle: true, AccessKeyID: "id", SecretAccessKey: "secret", SessionToken: "token",
	}
	if diff := cmp.Diff(want, store.FromAccess(a)); diff != "" {
		t.Errorf("FromAccess() mismatch (-want +got):\n%s", diff)
	}
}

func TestConfigPrintsNoSecret(t *testing.T) {
	cfg := validConfig()
	cfg.SessionToken = "session-token-value"
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(verb, cfg)
		if strings.Contains(out, cfg.SecretAccessKey.Reveal()) || strings.Contains(out, "session-token-value") {
			t.Errorf("Sprintf(%q, cfg) = %q shows a secret", verb, out)
		}
	}
}

func TestPresignValidity(t *testing.T) {
	s, err := store.New(validConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ttl    time.Duration
		wantOK bool
	}{
		{0, false},
		{-time.Second, false},
		{time.Second, true},
		{store.MaxPresignTTL, true},
		{store.MaxPresignTTL + time.Second, false},
	} {
		_, errGet := s.PresignGet(t.Context(), "k", tt.ttl)
		_, errPut := s.PresignPut(t.Context(), "k", tt.ttl)
		for _, err := range []error{errGet, errPut} {
			if (err == nil) != tt.wantOK {
				t.Errorf("presign with validity %s: err = %v, want ok = %v", tt.ttl, err, tt.wantOK)
			}
		}
	}
}

func TestPresignedURLShape(t *testing.T) {
	tests := []struct {
		name      string
		pathStyle bool
		want      string
	}{
		{"path style", true, "https://fsn1.your-objectstorage.com/sortie-runs/sortie/prod/runs/r1/spec.json?"},
		{"virtual hosted", false, "https://sortie-runs.fsn1.your-objectstorage.com/sortie/prod/runs/r1/spec.json?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			cfg.PathStyle = tt.pathStyle
			s, err := store.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			u, err := s.PresignGet(t.Context(), protocol.NewRunKeys(cfg.Prefix, "r1").Spec(), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(u, tt.want) {
				t.Errorf("PresignGet() = %q, want it to start with %q", u, tt.want)
			}
			for _, q := range []string{"X-Amz-Expires=3600", "X-Amz-Signature=", "us-east-1"} {
				if !strings.Contains(u, q) {
					t.Errorf("PresignGet() = %q, want it to contain %q", u, q)
				}
			}
			if strings.Contains(u, cfg.SecretAccessKey.Reveal()) {
				t.Errorf("PresignGet() = %q contains the secret key", u)
			}
		})
	}
}
