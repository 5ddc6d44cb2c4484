package supervisor

import (
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/sortie/sortie/pkg/protocol"
)

// TestPullAuth: the bundle's registry credentials go only with an image of
// that registry; a spec naming another registry is refused, not pulled
// anonymously or with them.
func TestPullAuth(t *testing.T) {
	auth := func(server string) *protocol.RegistryAuth {
		return &protocol.RegistryAuth{Server: server, Username: "u", Password: "pw-never-printed"}
	}
	tests := []struct {
		image   string
		auth    *protocol.RegistryAuth
		want    bool   // credentials returned
		wantErr string // "" for none
	}{
		{"ghcr.io/me/agent:1", nil, false, ""},
		{"ghcr.io/me/agent:1", auth("ghcr.io"), true, ""},
		{"127.0.0.1:5000/me/agent", auth("127.0.0.1:5000"), true, ""},
		{"alpine", auth("docker.io"), true, ""},
		{"me/agent:1", auth("docker.io"), true, ""},
		{"ghcr.io/me/agent:1", auth("quay.io"), false, `is on registry "ghcr.io", but the registry credentials are for "quay.io"`},
		{"me/agent", auth("ghcr.io"), false, `is on registry "docker.io"`},
		{"127.0.0.1:5001/me/agent", auth("127.0.0.1:5000"), false, "sent to no other registry"},
		{"Not A Reference", auth("ghcr.io"), false, "not a valid image reference"},
	}
	for _, tt := range tests {
		got, err := pullAuth(tt.image, tt.auth)
		if (got != nil) != tt.want {
			t.Errorf("pullAuth(%q, %+v) = %+v, want credentials: %v", tt.image, tt.auth, got, tt.want)
		}
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("pullAuth(%q) error = %v, want none", tt.image, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("pullAuth(%q) error = %v, want one containing %q", tt.image, err, tt.wantErr)
		case err != nil && strings.Contains(err.Error(), "pw-never-printed"):
			t.Errorf("pullAuth error holds the password: %v", err)
		}
	}
}

func TestRedactError(t *testing.T) {
	const pw = protocol.Secret("s3cr3t-pa55")
	inner := &fs.PathError{Op: "get", Path: "https://u:" + pw.Reveal() + "@r.example", Err: fs.ErrPermission}
	err := redactError(inner, pw)
	if strings.Contains(err.Error(), pw.Reveal()) || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("redactError = %q, want the password replaced by [redacted]", err)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("redactError lost the wrapped error: errors.Is(%v, ErrPermission) = false", err)
	}
	if plain := errors.New("no password here"); redactError(plain, pw) != plain {
		t.Error("redactError changed an error without the password")
	}
}
