package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestRunRegistryFlags: --registry and --registry-user go together, the
// password comes only from SORTIE_REGISTRY_PASSWORD, and mistakes are
// refused before anything starts, in words that say what to fix and never
// hold the password.
func TestRunRegistryFlags(t *testing.T) {
	const pw = "pw-from-the-environment"
	tests := []struct {
		name string
		pw   string // "": the variable is unset
		args []string
		want string
	}{
		{"user without server", pw, []string{"--registry-user", "me"}, "--registry-user needs --registry SERVER"},
		{"server without user", pw, []string{"--registry", "ghcr.io"}, "--registry ghcr.io needs --registry-user USER"},
		{"no password", "", []string{"--registry", "ghcr.io", "--registry-user", "me"}, "SORTIE_REGISTRY_PASSWORD, which is not set"},
		{"other registry", pw, []string{"--registry", "quay.io", "--registry-user", "me"}, `set the registry server to "ghcr.io"`},
		{"server with scheme", pw, []string{"--registry", "https://ghcr.io", "--registry-user", "me"}, "must be a host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(registryPasswordEnv, tt.pw)
			var out, errb bytes.Buffer
			args := append([]string{"run", "--image", "ghcr.io/me/agent:1", "--state-dir", t.TempDir()}, tt.args...)
			if code := Main(context.Background(), args, &out, &errb, "test"); code != ExitSortie {
				t.Errorf("exit code = %d, want %d", code, ExitSortie)
			}
			if !strings.Contains(errb.String(), tt.want) {
				t.Errorf("stderr = %q, want it to contain %q", errb.String(), tt.want)
			}
			if strings.Contains(out.String()+errb.String(), pw) {
				t.Errorf("the password was printed: %q", out.String()+errb.String())
			}
		})
	}
}

// TestRunRegistryFlagsSpec: the flags and the environment make the run's
// registry credentials.
func TestRunRegistryFlagsSpec(t *testing.T) {
	t.Setenv(registryPasswordEnv, "pw-from-the-environment")
	f := &runFlags{image: "ghcr.io/me/agent:1", timeout: time.Minute, registry: "ghcr.io", regUser: "me"}
	s, err := f.spec(nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Registry == nil || s.Registry.Server != "ghcr.io" || s.Registry.Username != "me" || s.Registry.Password.Reveal() != "pw-from-the-environment" {
		t.Errorf("spec.Registry = %+v, want ghcr.io, me and the password from the environment", s.Registry)
	}
}
