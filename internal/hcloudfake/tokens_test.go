package hcloudfake_test

import (
	"net/http"
	"testing"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/sortie/sortie/internal/hcloudfake"
)

// TestReadOnlyToken: a read-only token reads, and its writes are refused
// with 401 token_readonly before anything changes; a read-write token's
// invalid write is refused by validation; an unknown token by
// authentication.
func TestReadOnlyToken(t *testing.T) {
	f, _ := start(t, hcloudfake.WithToken("rw"), hcloudfake.WithReadOnlyToken("ro"))
	ctx := ctxT(t)
	ro, rw, unknown := client(f, "ro", 0), client(f, "rw", 0), client(f, "nope", 0)

	if _, _, err := ro.Server.List(ctx, hcloud.ServerListOpts{}); err != nil {
		t.Fatalf("read with the read-only token: %v", err)
	}
	key := hcloud.SSHKeyCreateOpts{Name: "k", PublicKey: keyA}
	_, resp, err := ro.SSHKey.Create(ctx, key)
	if !hcloud.IsError(err, "token_readonly") || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("write with the read-only token: err = %v, want 401 token_readonly", err)
	}
	if keys, _ := rw.SSHKey.All(ctx); len(keys) != 0 {
		t.Errorf("a refused write created %d SSH keys", len(keys))
	}
	_, _, err = rw.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "k", PublicKey: "not-a-key"})
	if !hcloud.IsError(err, hcloud.ErrorCodeInvalidInput) {
		t.Errorf("invalid write with the read-write token: err = %v, want invalid_input", err)
	}
	if _, _, err := rw.SSHKey.Create(ctx, key); err != nil {
		t.Errorf("write with the read-write token: %v", err)
	}
	_, _, err = unknown.Server.List(ctx, hcloud.ServerListOpts{})
	if !hcloud.IsError(err, hcloud.ErrorCodeUnauthorized) {
		t.Errorf("read with an unknown token: err = %v, want unauthorized", err)
	}
}
