package sortie_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sortie/sortie/internal/hcloudfake"
	"github.com/sortie/sortie/internal/store"
	"github.com/sortie/sortie/internal/testenv"
	"github.com/sortie/sortie/pkg/protocol"
	"github.com/sortie/sortie/pkg/sortie"
)

func doctorCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// find returns the check named name, failing the test if there is none.
func find(t *testing.T, checks []sortie.Check, name string) sortie.Check {
	t.Helper()
	for _, c := range checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %q check in %+v", name, checks)
	return sortie.Check{}
}

// want checks that the named check has status st and its detail every one
// of the words.
func want(t *testing.T, checks []sortie.Check, name string, st sortie.Status, words ...string) {
	t.Helper()
	c := find(t, checks, name)
	if c.Status != st {
		t.Errorf("%s: status %s, want %s (%s)", name, c.Status, st, c.Detail)
	}
	for _, w := range words {
		if !strings.Contains(c.Detail, w) {
			t.Errorf("%s: detail %q lacks %q", name, c.Detail, w)
		}
	}
}

// noSecrets fails the test if any check's detail holds one of secrets.
func noSecrets(t *testing.T, checks []sortie.Check, secrets ...string) {
	t.Helper()
	for _, c := range checks {
		for _, s := range secrets {
			if s != "" && strings.Contains(c.Name+c.Detail, s) {
				t.Errorf("check %s prints a secret: %s", c.Name, c.Detail)
			}
		}
	}
}

// TestDoctorEmbedded: with nothing configured, the embedded store and
// the local provider; no STS, nothing failed but what the machine lacks.
func TestDoctorEmbedded(t *testing.T) {
	t.Setenv("HCLOUD_TOKEN", "")
	state := filepath.Join(t.TempDir(), "state")
	checks := sortie.Doctor(doctorCtx(t), sortie.Options{StateDir: state, SupervisorPath: testenv.SupervisorBinary(t)})
	want(t, checks, "provider", sortie.StatusOK, "local")
	want(t, checks, "access", sortie.StatusOK, "presigned")
	want(t, checks, "state dir", sortie.StatusOK, state)
	want(t, checks, "store", sortie.StatusOK, "embedded", "local only")
	want(t, checks, "clock", sortie.StatusOK)
	want(t, checks, "sts", sortie.StatusInfo, "no STS")
	want(t, checks, "supervisor", sortie.StatusOK)

	checks = sortie.Doctor(doctorCtx(t), sortie.Options{StateDir: state, Access: protocol.AccessSTS, Provider: "hetzner", Hetzner: sortie.HetznerOptions{Endpoint: "http://127.0.0.1:1/v1"}})
	want(t, checks, "store", sortie.StatusFail, "cannot reach the embedded store")
	want(t, checks, "sts", sortie.StatusFail, "no STS")
	want(t, checks, "hetzner token", sortie.StatusFail, "HCLOUD_TOKEN")

	checks = sortie.Doctor(doctorCtx(t), sortie.Options{StateDir: state, AccessTTL: 2 * time.Minute, BootTimeout: 3 * time.Minute})
	want(t, checks, "access ttl", sortie.StatusWarn, "not longer than the boot timeout")
}

// TestDoctorStore: against MinIO, each way the store refuses is said in
// plain words, nothing is left in the bucket, and no secret is printed.
func TestDoctorStore(t *testing.T) {
	cfg := testenv.MinIO(t)
	good := sortie.StoreOptions{Endpoint: cfg.Endpoint, Region: cfg.Region, Bucket: cfg.Bucket, Prefix: "team", PathStyle: true,
		AccessKeyID: cfg.AccessKeyID, SecretAccessKey: cfg.SecretAccessKey}
	mod := func(f func(*sortie.StoreOptions)) sortie.StoreOptions { s := good; f(&s); return s }
	tests := []struct {
		name   string
		store  sortie.StoreOptions
		status sortie.Status
		words  []string
	}{
		{"good", good, sortie.StatusOK, []string{cfg.Bucket, "team/doctor/", "wrote, read back and deleted"}},
		{"unknown key", mod(func(s *sortie.StoreOptions) { s.AccessKeyID = "not-a-key-id" }), sortie.StatusFail, []string{"AWS_ACCESS_KEY_ID"}},
		{"wrong secret", mod(func(s *sortie.StoreOptions) { s.SecretAccessKey = "wrong-secret-1234" }), sortie.StatusFail, []string{"refused the secret key", "AWS_SECRET_ACCESS_KEY"}},
		{"no bucket", mod(func(s *sortie.StoreOptions) { s.Bucket = "no-such-bucket-doctor" }), sortie.StatusFail, []string{`"no-such-bucket-doctor" does not exist`}},
		{"unreachable", mod(func(s *sortie.StoreOptions) { s.Endpoint = "http://" + testenv.ClosedAddr(t) }), sortie.StatusFail, []string{"cannot reach the store", "--endpoint"}},
		{"no secret", mod(func(s *sortie.StoreOptions) { s.SecretAccessKey = "" }), sortie.StatusFail, []string{"AWS_SECRET_ACCESS_KEY is not"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checks := sortie.Doctor(doctorCtx(t), sortie.Options{StateDir: t.TempDir(), Store: tt.store, SupervisorPath: "/no/such"})
			want(t, checks, "store", tt.status, tt.words...)
			noSecrets(t, checks, cfg.AccessKeyID, cfg.SecretAccessKey.Reveal(), tt.store.AccessKeyID, tt.store.SecretAccessKey.Reveal())
			if tt.name == "good" {
				want(t, checks, "clock", sortie.StatusOK, "within")
				want(t, checks, "sts", sortie.StatusInfo, "STS at "+cfg.Endpoint+" issues scoped credentials")
			}
		})
	}
	if left := objects(t, cfg); len(left) > 0 {
		t.Errorf("objects left in the bucket: %v", left)
	}
}

// TestDoctorSTS: in the sts mode, MinIO's STS issues credentials that
// write under their prefix and cannot read outside it; wrong credentials
// make it fail.
func TestDoctorSTS(t *testing.T) {
	cfg := testenv.MinIO(t)
	st := sortie.StoreOptions{Endpoint: cfg.Endpoint, Bucket: cfg.Bucket, PathStyle: true,
		AccessKeyID: cfg.AccessKeyID, SecretAccessKey: cfg.SecretAccessKey}
	checks := sortie.Doctor(doctorCtx(t), sortie.Options{StateDir: t.TempDir(), Store: st, Access: protocol.AccessSTS, SupervisorPath: "/no/such"})
	want(t, checks, "access", sortie.StatusOK, "sts")
	want(t, checks, "sts", sortie.StatusOK, "write under their run's prefix and cannot read outside it")
	noSecrets(t, checks, cfg.AccessKeyID, cfg.SecretAccessKey.Reveal())

	st.SecretAccessKey = "wrong-secret-5678"
	checks = sortie.Doctor(doctorCtx(t), sortie.Options{StateDir: t.TempDir(), Store: st, Access: protocol.AccessSTS, SupervisorPath: "/no/such"})
	want(t, checks, "sts", sortie.StatusFail)
	noSecrets(t, checks, "wrong-secret-5678")
	if left := objects(t, cfg); len(left) > 0 {
		t.Errorf("objects left in the bucket: %v", left)
	}
}

// TestDoctorClock: the store's Date header against this clock: ok within
// 30 s, warn beyond, FAIL beyond 5 min.
func TestDoctorClock(t *testing.T) {
	tests := []struct {
		offset time.Duration
		want   sortie.Status
		words  []string
	}{
		{0, sortie.StatusOK, []string{"within"}},
		{-2 * time.Minute, sortie.StatusWarn, []string{"2m0s ahead of the store's", "NTP"}},
		{20 * time.Minute, sortie.StatusFail, []string{"20m0s behind the store's", "15 min"}},
	}
	for _, tt := range tests {
		t.Run(tt.offset.String(), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Date", time.Now().Add(tt.offset).UTC().Format(http.TimeFormat))
				w.WriteHeader(http.StatusForbidden)
			}))
			defer srv.Close()
			checks := sortie.Doctor(doctorCtx(t), sortie.Options{StateDir: t.TempDir(), SupervisorPath: "/no/such",
				Store: sortie.StoreOptions{Endpoint: srv.URL, Bucket: "b-clock", PathStyle: true, AccessKeyID: "k", SecretAccessKey: "s"}})
			want(t, checks, "store", sortie.StatusFail)
			want(t, checks, "clock", tt.want, tt.words...)
		})
	}
}

// TestDoctorHetzner: against the spec-validated fake, a read-write token
// passes, a read-only one cannot create servers, an unknown one is
// refused; with the local provider the token's failures are warnings.
// The token is never printed.
func TestDoctorHetzner(t *testing.T) {
	fake := hcloudfake.New(hcloudfake.WithToken("rw-doctor-token"), hcloudfake.WithReadOnlyToken("ro-doctor-token"),
		hcloudfake.WithToken("vm-delete-doctor-token"), hcloudfake.WithReadOnlyToken("ro-delete-doctor-token"), hcloudfake.WithSpecValidation(t, ""))
	fake.Start()
	t.Cleanup(fake.Close)
	tests := []struct {
		name, token, provider string
		hetzner               sortie.HetznerOptions
		want                  map[string]sortie.Status
	}{
		{"read-write", "rw-doctor-token", "", sortie.HetznerOptions{}, map[string]sortie.Status{
			"provider": sortie.StatusOK, "hetzner token": sortie.StatusOK, "hetzner write": sortie.StatusOK, "hetzner catalog": sortie.StatusOK,
			"self-destruct": sortie.StatusOK}},
		{"delete mode", "rw-doctor-token", "", sortie.HetznerOptions{SelfDestruct: "delete", DeleteToken: "vm-delete-doctor-token"}, map[string]sortie.Status{
			"hetzner write": sortie.StatusOK, "self-destruct": sortie.StatusWarn, "delete token": sortie.StatusOK}},
		{"delete mode, read-only delete token", "rw-doctor-token", "", sortie.HetznerOptions{SelfDestruct: "delete", DeleteToken: "ro-delete-doctor-token"}, map[string]sortie.Status{
			"self-destruct": sortie.StatusWarn, "delete token": sortie.StatusFail}},
		{"delete mode, unknown delete token", "rw-doctor-token", "", sortie.HetznerOptions{SelfDestruct: "delete", DeleteToken: "no-such-delete-token"}, map[string]sortie.Status{
			"delete token": sortie.StatusFail}},
		{"delete mode, coordinator's token", "rw-doctor-token", "", sortie.HetznerOptions{SelfDestruct: "delete", DeleteToken: "rw-doctor-token"}, map[string]sortie.Status{
			"hetzner config": sortie.StatusFail}},
		{"read-only", "ro-doctor-token", "", sortie.HetznerOptions{}, map[string]sortie.Status{
			"hetzner token": sortie.StatusOK, "hetzner write": sortie.StatusFail, "hetzner catalog": sortie.StatusOK}},
		{"unknown", "no-such-doctor-token", "", sortie.HetznerOptions{}, map[string]sortie.Status{"hetzner token": sortie.StatusFail}},
		{"typos", "rw-doctor-token", "", sortie.HetznerOptions{ServerTypes: []string{"cx99"}, Locations: []string{"fsn1"}}, map[string]sortie.Status{
			"hetzner write": sortie.StatusOK, "hetzner catalog": sortie.StatusFail}},
		{"read-only, local provider", "ro-doctor-token", "local", sortie.HetznerOptions{}, map[string]sortie.Status{
			"provider": sortie.StatusOK, "hetzner write": sortie.StatusWarn}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.hetzner
			h.Token, h.Endpoint = sortie.Secret(tt.token), fake.URL()
			checks := sortie.Doctor(doctorCtx(t), sortie.Options{StateDir: t.TempDir(), Provider: tt.provider, Hetzner: h, SupervisorPath: "/no/such"})
			for name, st := range tt.want {
				want(t, checks, name, st)
			}
			noSecrets(t, checks, tt.token)
			if h.DeleteToken != "" {
				noSecrets(t, checks, h.DeleteToken.Reveal())
			}
		})
	}
	want(t, sortie.Doctor(doctorCtx(t), sortie.Options{StateDir: t.TempDir(),
		Hetzner: sortie.HetznerOptions{Token: "ro-doctor-token", Endpoint: fake.URL()}}), "hetzner write", sortie.StatusFail, "read-only", "Read & Write")
}

// TestDoctorDockerAndSupervisor: the local provider needs an engine that
// answers, and a supervisor built for the VMs.
func TestDoctorDockerAndSupervisor(t *testing.T) {
	t.Setenv("HCLOUD_TOKEN", "")
	dir := t.TempDir()
	sup := testenv.SupervisorBinary(t)
	t.Run("no engine, not a supervisor", func(t *testing.T) {
		notELF := filepath.Join(dir, "vm-supervisor")
		if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(dir, "no-docker.sock"))
		checks := sortie.Doctor(doctorCtx(t), sortie.Options{StateDir: dir, SupervisorPath: notELF})
		want(t, checks, "docker", sortie.StatusFail, "no Docker engine answers", "no-docker.sock")
		want(t, checks, "supervisor", sortie.StatusFail, "not a Linux executable")
	})
	t.Run("other architecture", func(t *testing.T) {
		other := map[string]string{"amd64": "arm64", "arm64": "amd64"}[runtime.GOARCH]
		if other == "" {
			t.Skipf("VMs are amd64 or arm64; this machine is %s", runtime.GOARCH)
		}
		checks := sortie.Doctor(doctorCtx(t), sortie.Options{StateDir: dir, Provider: "hetzner", SupervisorPath: sup,
			Hetzner: sortie.HetznerOptions{Arch: other, ServerTypes: []string{"cax11"}}})
		want(t, checks, "supervisor", sortie.StatusFail, "built for "+runtime.GOARCH, "make supervisors")
	})
	t.Run("engine", func(t *testing.T) {
		if testing.Short() {
			t.Skip("needs Docker")
		}
		testenv.Docker(t)
		checks := sortie.Doctor(doctorCtx(t), sortie.Options{StateDir: dir, SupervisorPath: sup})
		want(t, checks, "docker", sortie.StatusOK, "answers")
		want(t, checks, "supervisor", sortie.StatusOK, sup)
	})
}

// objects lists the bucket of cfg.
func objects(t *testing.T, cfg store.Config) []string {
	t.Helper()
	c := s3.New(s3.Options{Region: cfg.Region, BaseEndpoint: aws.String(cfg.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey.Reveal(), "")})
	out, err := c.ListObjectsV2(doctorCtx(t), &s3.ListObjectsV2Input{Bucket: aws.String(cfg.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}
