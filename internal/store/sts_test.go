package store_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/store"
	"github.com/sortie/sortie/internal/testenv"
	"github.com/sortie/sortie/pkg/protocol"
)

// TestAssumeRoleScope asks MinIO's STS for credentials scoped to one run's
// prefix and a short window, and shows what they can and cannot reach.
func TestAssumeRoleScope(t *testing.T) {
	cfg := testenv.MinIO(t)
	ctx := testContext(t)
	root := newS3(t, cfg)
	mine, theirs := "sortie/runs/aaa/", "sortie/runs/aab/"
	for _, k := range []string{mine + "spec.json", theirs + "spec.json", "sortie/runs/aaa-other/x"} {
		if err := root.Put(ctx, k, bytes.NewReader([]byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
	window := 4 * time.Second
	until := time.Now().Add(window)
	creds, err := store.AssumeRole(ctx, cfg, store.STSConfig{}, store.Scope{Bucket: cfg.Bucket, Prefix: mine, Until: until}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKeyID == cfg.AccessKeyID || creds.SessionToken == "" {
		t.Fatal("AssumeRole returned the caller's own key, or no session token")
	}
	if creds.Expires.After(until) {
		t.Errorf("credentials expire at %v, after the window's end %v", creds.Expires, until)
	}
	scoped := cfg
	scoped.AccessKeyID, scoped.SecretAccessKey, scoped.SessionToken = creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken
	s := newS3(t, scoped)
	if _, err := s.Get(ctx, mine+"spec.json"); err != nil {
		t.Errorf("read own key: %v", err)
	}
	if err := s.Put(ctx, mine+"events/0000000001.json", bytes.NewReader([]byte("e"))); err != nil {
		t.Errorf("write own key: %v", err)
	}
	for _, k := range []string{theirs + "spec.json", "sortie/runs/aaa-other/x"} {
		if _, err := s.Get(ctx, k); err == nil || errors.Is(err, protocol.ErrNotFound) {
			t.Errorf("read %s with another run's credentials: err = %v, want access denied", k, err)
		}
		if err := s.Put(ctx, k, bytes.NewReader([]byte("evil"))); err == nil {
			t.Errorf("write %s with another run's credentials succeeded", k)
		}
	}
	if err := s.Delete(ctx, mine+"spec.json"); err == nil {
		t.Errorf("delete with run credentials succeeded")
	}
	time.Sleep(time.Until(until) + 1500*time.Millisecond)
	if _, err := s.Get(ctx, mine+"spec.json"); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("read own key after the window: err = %v, want AccessDenied", err)
	}
}

// TestAssumeRoleErrors: a wrong key and an unreachable STS say what is
// wrong without printing the secret.
func TestAssumeRoleErrors(t *testing.T) {
	cfg := testenv.MinIO(t)
	ctx := testContext(t)
	scope := store.Scope{Bucket: cfg.Bucket, Prefix: "runs/x/", Until: time.Now().Add(time.Minute)}
	bad := cfg
	bad.SecretAccessKey = "wrong-secret-value-123"
	_, err := store.AssumeRole(ctx, bad, store.STSConfig{}, scope, "test")
	if err == nil || !strings.Contains(err.Error(), "STS AssumeRole at "+cfg.Endpoint) || strings.Contains(err.Error(), "wrong-secret-value-123") {
		t.Errorf("wrong secret: err = %v, want an STS error naming the endpoint and not the secret", err)
	}
	if _, err := store.AssumeRole(ctx, cfg, store.STSConfig{}, store.Scope{Bucket: cfg.Bucket, Until: scope.Until}, "test"); err == nil {
		t.Error("an empty prefix (the whole bucket) was accepted")
	}
}
