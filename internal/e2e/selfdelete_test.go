package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/coordinator"
	"github.com/sortie/sortie/internal/coordinator/hetzner"
	"github.com/sortie/sortie/internal/hcloudfake"
	"github.com/sortie/sortie/pkg/protocol"
)

// deleteToken is the VMs' own token in the delete self-destruct mode.
const deleteToken = "vm-delete-token-not-a-secret"

// TestHetznerSelfDeleteMode: in the delete mode the VM deletes its own
// server with the token from its sealed bundle, a token other than the
// coordinator's, used for nothing but finding and deleting that server.
func TestHetznerSelfDeleteMode(t *testing.T) {
	h := newHetznerHarness(t, true, hetzner.Config{SelfDestruct: protocol.SelfDestructDelete, DeleteToken: deleteToken},
		hcloudfake.WithToken(deleteToken))
	h.runToEnd(t)
	waitFor(t, "the VM's own delete", func() bool { return h.fake.RequestsWithToken(deleteToken, "DELETE", "/servers/{id}") == 1 })
	for _, r := range [][2]string{{"POST", "/servers"}, {"GET", "/ssh_keys"}, {"POST", "/ssh_keys"}} {
		if n := h.fake.RequestsWithToken(deleteToken, r[0], r[1]); n != 0 {
			t.Errorf("the VM's token was used for %s %s (%d times)", r[0], r[1], n)
		}
	}
}

// TestHetznerSelfDeleteFallsBack: a delete token the API refuses does not
// strand the VM: the supervisor falls back to powering off, and the
// coordinator deletes the server as in the poweroff mode.
func TestHetznerSelfDeleteFallsBack(t *testing.T) {
	const refused = "revoked-delete-token"
	h := newHetznerHarness(t, true, hetzner.Config{SelfDestruct: protocol.SelfDestructDelete, DeleteToken: refused})
	h.runToEnd(t)
	waitFor(t, "the VM's delete attempt", func() bool { return h.fake.RequestsWithToken(refused, "GET", "/servers") >= 1 })
	if n := h.fake.RequestsWithToken(fakeToken, "DELETE", "/servers/{id}"); n != 1 {
		t.Errorf("coordinator deletes = %d, want 1", n)
	}
}

// runToEnd runs an agent that exits 0 and waits until the run is over and
// no server is left.
func (h *hzHarness) runToEnd(t *testing.T) {
	t.Helper()
	run, err := h.c.Start(context.Background(), coordinator.RunSpec{
		Image: h.image, Command: []string{"-exit", "0"}, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, res := collect(t, run, nil)
	if !res.Succeeded() {
		t.Fatalf("result = %+v, want success", res)
	}
	<-run.Done()
	h.assertNoServers(t)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
