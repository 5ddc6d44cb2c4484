package supervisor_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/testenv"
	"github.com/sortie/sortie/pkg/protocol"
)

// TestDockerPullWithCredentials pulls an image from a private registry on
// loopback: refused without credentials and with a wrong password (in
// words that say so and never hold the password), pulled with the right
// ones.
func TestDockerPullWithCredentials(t *testing.T) {
	d, image := newDockerRuntime(t)
	reg := testenv.StartRegistry(t)
	ref := reg.Push(t, image, "sortie/testagent")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if ok, err := d.ImageExists(ctx, ref); err != nil || ok {
		t.Fatalf("ImageExists(%q) after the push = %v, %v; want false (the local tag removed)", ref, ok, err)
	}
	wrong := protocol.Secret("wrong-" + reg.Password.Reveal())
	for _, tc := range []struct {
		name string
		auth *protocol.RegistryAuth
	}{
		{"anonymous", nil},
		{"wrong password", &protocol.RegistryAuth{Server: reg.Host, Username: reg.Username, Password: wrong}},
		{"unknown user", &protocol.RegistryAuth{Server: reg.Host, Username: "nobody", Password: reg.Password}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := d.Pull(ctx, ref, tc.auth)
			if err == nil {
				t.Fatalf("Pull(%q) succeeded, want the registry to refuse", ref)
			}
			t.Logf("Pull: %v", err)
			if !strings.Contains(err.Error(), "registry refused") {
				t.Errorf("Pull error = %q, want it to say the registry refused", err)
			}
			for _, pw := range []protocol.Secret{wrong, reg.Password} {
				if strings.Contains(err.Error(), pw.Reveal()) {
					t.Errorf("Pull error holds the password: %q", err)
				}
			}
		})
	}
	if err := d.Pull(ctx, ref, reg.Auth()); err != nil {
		t.Fatalf("Pull(%q) with the credentials: %v", ref, err)
	}
	if ok, err := d.ImageExists(ctx, ref); err != nil || !ok {
		t.Errorf("ImageExists(%q) after the pull = %v, %v; want true", ref, ok, err)
	}
}
