package hetzner_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/sortie/sortie/internal/coordinator/hetzner"
	"github.com/sortie/sortie/internal/hcloudfake"
	"github.com/sortie/sortie/pkg/protocol"
)

func doctorFake(t *testing.T) *hcloudfake.Server {
	t.Helper()
	f := hcloudfake.New(hcloudfake.WithToken("rw-token"), hcloudfake.WithReadOnlyToken("ro-token"), hcloudfake.WithSpecValidation(t, ""))
	f.Start()
	t.Cleanup(f.Close)
	return f
}

func provider(t *testing.T, f *hcloudfake.Server, cfg hetzner.Config) *hetzner.Provider {
	t.Helper()
	cfg.Endpoint = f.URL()
	p, err := hetzner.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestCheckTokens: a read-write, a read-only and an unknown token are told
// apart, and the write probe leaves nothing behind.
func TestCheckTokens(t *testing.T) {
	f := doctorFake(t)
	tests := []struct {
		name      string
		token     string
		forbidden bool // the API answers the write 403 forbidden, as some tokens get
		wantRead  error
		wantWrite error
	}{
		{"read-write", "rw-token", false, nil, nil},
		{"read-only", "ro-token", false, nil, hetzner.ErrTokenReadOnly},
		{"answered 403 forbidden", "rw-token", true, nil, hetzner.ErrTokenReadOnly},
		{"unknown", "no-such-token", false, hetzner.ErrTokenUnknown, hetzner.ErrTokenUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxT(t)
			p := provider(t, f, hetzner.Config{Token: protocol.Secret(tt.token)})
			if err := p.CheckToken(ctx); !errors.Is(err, tt.wantRead) || (tt.wantRead == nil && err != nil) {
				t.Errorf("CheckToken = %v, want %v", err, tt.wantRead)
			}
			if tt.forbidden {
				f.FailStatus("POST /ssh_keys", http.StatusForbidden, "forbidden", 1)
			}
			if err := p.CheckWrite(ctx); !errors.Is(err, tt.wantWrite) || (tt.wantWrite == nil && err != nil) {
				t.Errorf("CheckWrite = %v, want %v", err, tt.wantWrite)
			}
		})
	}
	c := hcloud.NewClient(hcloud.WithEndpoint(f.URL()), hcloud.WithToken("rw-token"))
	keys, err := c.SSHKey.All(ctxT(t))
	if err != nil || len(keys) != 0 {
		t.Errorf("SSH keys after the probes: %d (%v), want none", len(keys), err)
	}
}

// TestCheckCatalog: the defaults exist; a missing server type, location
// or image, and a type of the other architecture, are fatal.
func TestCheckCatalog(t *testing.T) {
	f := doctorFake(t)
	tests := []struct {
		name string
		cfg  hetzner.Config
		want []hetzner.CatalogProblem
	}{
		{"defaults", hetzner.Config{}, nil},
		{"arm", hetzner.Config{Arch: "arm64", ServerTypes: []string{"cax11"}}, nil},
		{"typos", hetzner.Config{ServerTypes: []string{"cx23", "cx99"}, Locations: []string{"fsn1", "mars1"}, Image: "debian-99"}, []hetzner.CatalogProblem{
			{Text: `location "mars1" does not exist`, Fatal: true},
			{Text: `server type "cx99" does not exist`, Fatal: true},
			{Text: `image "debian-99" does not exist for x86`, Fatal: true},
		}},
		{"snapshot ID", hetzner.Config{Image: "999999"}, []hetzner.CatalogProblem{
			{Text: `image "999999" does not exist for x86`, Fatal: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Token = "ro-token" // reading the catalog needs no write
			got, err := provider(t, f, tt.cfg).CheckCatalog(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
