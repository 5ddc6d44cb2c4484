package coordinator

import (
	"strings"
	"testing"
	"time"

	"github.com/sortie/sortie/pkg/protocol"
)

// TestRunSpecRegistry: registry credentials need a server (the image's
// registry, as a plain host), a username and a password; every problem is
// named at once, the password never; and credentials let the VM pull.
func TestRunSpecRegistry(t *testing.T) {
	const pw = protocol.Secret("pw-never-printed")
	tests := []struct {
		name  string
		image string
		auth  protocol.RegistryAuth
		want  []string // substrings of the error; none: valid
	}{
		{"valid", "ghcr.io/me/agent:1", protocol.RegistryAuth{Server: "ghcr.io", Username: "me", Password: pw}, nil},
		{"docker hub", "me/agent", protocol.RegistryAuth{Server: "docker.io", Username: "me", Password: pw}, nil},
		{"loopback with port", "127.0.0.1:5000/me/agent", protocol.RegistryAuth{Server: "127.0.0.1:5000", Username: "me", Password: pw}, nil},
		{"nothing", "ghcr.io/me/agent", protocol.RegistryAuth{}, []string{
			"need the registry server", "need a username", "need a password"}},
		{"no password", "ghcr.io/me/agent", protocol.RegistryAuth{Server: "ghcr.io", Username: "me"}, []string{"need a password"}},
		{"scheme", "ghcr.io/me/agent", protocol.RegistryAuth{Server: "https://ghcr.io", Username: "me", Password: pw}, []string{
			`registry server "https://ghcr.io" must be a host`}},
		{"other registry", "me/agent", protocol.RegistryAuth{Server: "ghcr.io", Username: "me", Password: pw}, []string{
			`is not the registry of image "me/agent", which is "docker.io"`, "ghcr.io/me/agent", `set the registry server to "docker.io"`}},
		{"bad image", "Not An Image", protocol.RegistryAuth{Server: "ghcr.io", Username: "me", Password: pw}, []string{"not a valid image reference"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := RunSpec{Image: tt.image, Timeout: time.Minute, Registry: &tt.auth}
			err := s.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				if !s.protocolSpec("r", time.Now(), time.Now(), false).Pull {
					t.Error("registry credentials did not let the VM pull the image")
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want errors %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), pw.Reveal()) {
				t.Errorf("Validate error holds the password: %q", err)
			}
		})
	}
}
