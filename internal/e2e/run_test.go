package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/coordinator"
	"github.com/sortie/sortie/internal/testenv/agentdata"
	"github.com/sortie/sortie/pkg/protocol"
)

// TestRunEndToEnd: an agent that logs 1 MiB to stdout, writes two outbox
// files, receives a follow-up message and exits 3.
func TestRunEndToEnd(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	outDir := t.TempDir()
	const logBytes = 1 << 20
	run, err := h.c.Start(ctx, coordinator.RunSpec{
		Image: h.image,
		Command: []string{
			"-log-bytes", fmt.Sprint(logBytes), "-stderr", "to stderr",
			"-outbox", "hello.txt=hello from the agent",
			"-outbox-size", "data.bin=300000",
			"-wait-message", "60s", "-exit", "3",
		},
		Timeout: 2 * time.Minute, OutboxDir: outDir,
	})
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	var sent bool
	evs, res := collect(t, run, func(ev coordinator.Event) {
		switch {
		case ev.Type == protocol.EventPhase && ev.Phase.Name == protocol.PhaseStart && !sent:
			sent = true
			if _, err := run.Send(ctx, "what is the answer?"); err != nil {
				t.Errorf("send: %v", err)
			}
		case ev.Type == protocol.EventLog:
			w := &stdout
			if ev.Log.Stream == protocol.StreamStderr {
				w = &stderr
			}
			if int64(w.Len()) != ev.Log.Offset {
				t.Errorf("%s chunk at offset %d, have %d bytes: a gap or a repeat", ev.Log.Stream, ev.Log.Offset, w.Len())
			}
			w.Write(ev.Log.Data)
		}
	})
	if res.ExitCode != 3 || res.Error != "" || res.TimedOut || res.Cancelled {
		t.Errorf("result = exit %d, error %q, timed out %v, cancelled %v; want exit 3 and nothing else", res.ExitCode, res.Error, res.TimedOut, res.Cancelled)
	}
	if !bytes.Equal(stdout.Bytes(), agentdata.Lines(logBytes)) {
		t.Errorf("stdout: got %d bytes, want the %d-byte numbered log complete and in order", stdout.Len(), logBytes)
	}
	if got := stderr.String(); !strings.Contains(got, "to stderr") {
		t.Errorf("stderr = %q, want it to contain %q", got, "to stderr")
	}
	want := map[string][]byte{
		"hello.txt":   []byte("hello from the agent"),
		"data.bin":    agentdata.PseudoRandom("data.bin", 300000),
		"reply-1.txt": []byte("got: what is the answer?"),
	}
	for name, content := range want {
		got, err := os.ReadFile(filepath.Join(outDir, filepath.FromSlash(name)))
		if err != nil {
			t.Errorf("outbox %s: %v", name, err)
			continue
		}
		if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(content)) {
			t.Errorf("outbox %s: %d bytes differ from the agent's %d", name, len(got), len(content))
		}
	}
	if len(res.Outbox) != len(want) {
		t.Errorf("result lists %d outbox files, want %d: %+v", len(res.Outbox), len(want), res.Outbox)
	}
	var delivered bool
	for _, ev := range evs {
		if ev.Type == protocol.EventMessage && ev.Message.Seq == 1 {
			delivered = true
		}
	}
	if !delivered {
		t.Error("no event says the follow-up message was delivered")
	}
	phases := map[string]bool{}
	for _, p := range res.Phases {
		phases[p.Name] = true
	}
	for _, p := range []string{protocol.PhaseBootstrap, protocol.PhaseCreate, protocol.PhaseStart, protocol.PhaseRunning} {
		if !phases[p] {
			t.Errorf("result has no %q phase: %+v", p, res.Phases)
		}
	}
	// The bundle is gone after the hello.
	if ok, err := h.store.Exists(ctx, protocol.NewRunKeys("e2e", run.ID).Bootstrap()); err != nil || ok {
		t.Errorf("bootstrap bundle still exists (%v, %v)", ok, err)
	}
	h.assertNothingLeft(t, run.ID)
}

// TestTimeout: a container that ignores SIGTERM and never exits is killed
// at its timeout plus grace; nothing is left running.
func TestTimeout(t *testing.T) {
	h := newHarness(t)
	run, err := h.c.Start(context.Background(), coordinator.RunSpec{
		Image: h.image, Command: []string{"-ignore-term", "-sleep", "forever"},
		Timeout: 2 * time.Second, StopGrace: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, res := collect(t, run, nil)
	if !res.TimedOut {
		t.Errorf("result does not say timed out: %+v", res)
	}
	if res.ExitCode != 137 {
		t.Errorf("exit code = %d, want 137 (killed after the grace period)", res.ExitCode)
	}
	if !strings.Contains(res.Error, "timeout") {
		t.Errorf("error = %q, want it to name the timeout", res.Error)
	}
	<-run.Done()
	h.assertNothingLeft(t, run.ID)
}

// TestCancel: a cancel message stops the agent; the result says cancelled.
func TestCancel(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	run, err := h.c.Start(ctx, coordinator.RunSpec{
		Image: h.image, Command: []string{"-sleep", "forever"}, Timeout: time.Minute, StopGrace: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, res := collect(t, run, func(ev coordinator.Event) {
		if ev.Type == protocol.EventPhase && ev.Phase.Name == protocol.PhaseStart {
			if err := run.Cancel(ctx); err != nil {
				t.Errorf("cancel: %v", err)
			}
		}
	})
	if !res.Cancelled || res.TimedOut {
		t.Errorf("result = %+v, want cancelled", res)
	}
	h.assertNothingLeft(t, run.ID)
}

// TestCancelDuringPull: a cancel reaches the supervisor while it still
// pulls the image (from a registry on loopback that never answers): the
// pull stops, no container is made, and the result says cancelled.
func TestCancelDuringPull(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	slow := stallingServer(t, 5*time.Minute)
	run, err := h.c.Start(ctx, coordinator.RunSpec{
		Image: slow + "/sortie/never:1", Pull: true, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	var cancelledAt time.Time
	_, res := collect(t, run, func(ev coordinator.Event) {
		if ev.Type == protocol.EventPhase && ev.Phase.Name == protocol.PhaseSpec {
			// The spec phase ends as the image step begins.
			cancelledAt = time.Now()
			if err := run.Cancel(ctx); err != nil {
				t.Errorf("cancel: %v", err)
			}
		}
	})
	if !res.Cancelled || res.ExitCode != -1 || res.Error != "" {
		t.Errorf("result = %+v, want cancelled before any container ran", res)
	}
	if cancelledAt.IsZero() {
		t.Fatal("no spec phase event: the cancel was never sent")
	}
	t.Logf("result %s after the cancel", time.Since(cancelledAt).Round(time.Millisecond))
	h.assertNothingLeft(t, run.ID)
}
