package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/coordinator"
	"github.com/sortie/sortie/internal/coordinator/local"
	"github.com/sortie/sortie/internal/store"
	"github.com/sortie/sortie/internal/testenv/agentdata"
	"github.com/sortie/sortie/pkg/protocol"
)

// TestPresignedRefillsAndExpiry: in the presigned mode (no credentials on
// the VM), books far smaller than the run force several refills through
// the inbox; the run still delivers everything. After the run, nothing is
// refilled: the VM's URLs stop working within one TTL, and no URL can be
// bent to another run's key.
func TestPresignedRefillsAndExpiry(t *testing.T) {
	const ttl = 6 * time.Second
	keep := t.TempDir()
	h := newHarness(t, func(c *coordinator.Config, p *local.Provider) {
		p.KeepLogs = keep
		c.Access = coordinator.AccessPresigned
		c.BookEvents, c.BookBlobs, c.BookInbox, c.AccessTTL = 4, 2, 4, ttl
	})
	ctx := context.Background()
	out := t.TempDir()
	const logBytes = 600 << 10
	run, err := h.c.Start(ctx, coordinator.RunSpec{
		Image: h.image,
		Command: []string{"-log-bytes", fmt.Sprint(logBytes), "-outbox", "a=1", "-outbox", "b=2", "-outbox", "c=3",
			"-outbox", "d=4", "-outbox", "e=5", "-wait-message", "60s", "-outbox-timed", "12:1ms", "-exit", "0"},
		Timeout: 2 * time.Minute, OutboxDir: out,
	})
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	sent := false
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(keep, coordinator.VMName(run.ID)+".log"))
			t.Logf("supervisor log:\n%s", b)
		}
	})
	_, res := collect(t, run, func(ev coordinator.Event) {
		if ev.Type == protocol.EventLog && ev.Log.Stream == protocol.StreamStdout {
			stdout.Write(ev.Log.Data)
		}
		if ev.Type == protocol.EventPhase && ev.Phase.Name == protocol.PhaseStart && !sent {
			sent = true
			if _, err := run.Send(ctx, "hi"); err != nil {
				t.Error(err)
			}
		}
	})
	// 5 files, the reply, and 12 written in a burst right before the exit,
	// which need refills while the supervisor flushes.
	if !res.Succeeded() || len(res.Outbox) != 18 {
		t.Fatalf("result = %+v, want success with 18 outbox files", res)
	}
	if !bytes.Equal(stdout.Bytes(), agentdata.Lines(logBytes)) {
		t.Errorf("stdout: %d bytes, want the %d-byte log complete and in order", stdout.Len(), logBytes)
	}
	// The books the VM got: the bundle's (gone) and each refill.
	refills := h.refills(t, run.ID)
	if len(refills) < 2 {
		t.Fatalf("%d refills, want several: the books were far smaller than the run", len(refills))
	}
	last := refills[len(refills)-1].Book
	statusURL := last.Put["status.json"]
	// Bent to another run: the signature does not cover it.
	other := strings.Replace(statusURL, run.ID, "01otherrun00000000000000000", 1)
	if err := store.HTTPPut(ctx, other, bytes.NewReader([]byte("x"))); err == nil {
		t.Error("a URL of this run, bent to another run's key, was accepted")
	}
	// Within one TTL after the last refill, the VM's access has ended.
	time.Sleep(time.Until(last.Expires) + time.Second)
	err = store.HTTPPut(ctx, statusURL, bytes.NewReader([]byte(`{"v":1}`)))
	var he *store.HTTPError
	if !errors.As(err, &he) || he.StatusCode != http.StatusForbidden {
		t.Errorf("PUT with an expired URL = %v, want 403", err)
	}
}
