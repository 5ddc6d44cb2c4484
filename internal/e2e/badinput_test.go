package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/coordinator"
	"github.com/sortie/sortie/pkg/protocol"
)

// TestStartRefusesBadSpecs: each bad spec gets an error that says what to
// fix, and nothing is created.
func TestStartRefusesBadSpecs(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name string
		spec coordinator.RunSpec
		want string
	}{
		{"no image", coordinator.RunSpec{Timeout: time.Minute}, "image is required"},
		{"zero timeout", coordinator.RunSpec{Image: h.image}, "timeout must be positive"},
		{"negative timeout", coordinator.RunSpec{Image: h.image, Timeout: -time.Second}, "timeout must be positive"},
		{"missing workspace", coordinator.RunSpec{Image: h.image, Timeout: time.Minute, Workspace: "/does/not/exist"}, `workspace "/does/not/exist" does not exist`},
		{"bad input JSON", coordinator.RunSpec{Image: h.image, Timeout: time.Minute, Input: []byte("{")}, "input is not valid JSON"},
		{"all at once", coordinator.RunSpec{Timeout: -1}, "image is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run, err := h.c.Start(context.Background(), tt.spec)
			if err == nil {
				t.Fatalf("Start succeeded (run %s), want an error containing %q", run.ID, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start error = %q, want it to contain %q", err, tt.want)
			}
			if got := h.prov.Running(); len(got) != 0 {
				t.Errorf("a VM was started for a bad spec: %v", got)
			}
		})
	}
}

// TestMissingImage: an image that is not on the VM (and may not be pulled)
// gives a result with a clear error; no container is left.
func TestMissingImage(t *testing.T) {
	h := newHarness(t)
	run, err := h.c.Start(context.Background(), coordinator.RunSpec{Image: "sortie-test/does-not-exist:v0", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	_, res := collect(t, run, nil)
	if res.ExitCode != -1 || !strings.Contains(res.Error, `image "sortie-test/does-not-exist:v0" is not present`) {
		t.Errorf("result = exit %d, error %q; want exit -1 and an error naming the missing image", res.ExitCode, res.Error)
	}
	h.assertNothingLeft(t, run.ID)
}

// TestOutboxSymlinkRefused: a symlink in the outbox that points outside it
// is refused with a notice, and its target is never uploaded.
func TestOutboxSymlinkRefused(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	outDir := t.TempDir()
	run, err := h.c.Start(ctx, coordinator.RunSpec{
		Image:   h.image,
		Command: []string{"-outbox", "ok.txt=fine", "-symlink", "passwd=/etc/passwd", "-symlink", "up=../../", "-sleep", "3s"},
		Timeout: time.Minute, OutboxDir: outDir,
	})
	if err != nil {
		t.Fatal(err)
	}
	evs, res := collect(t, run, nil)
	if res.ExitCode != 0 || res.Error != "" {
		t.Fatalf("result = exit %d, error %q; want a clean exit", res.ExitCode, res.Error)
	}
	if len(res.Outbox) != 1 || res.Outbox[0].Name != "ok.txt" {
		t.Errorf("result outbox = %+v, want only ok.txt", res.Outbox)
	}
	var notices []string
	for _, ev := range evs {
		if ev.Type == protocol.EventNotice {
			notices = append(notices, ev.Notice.Text)
		}
	}
	if !strings.Contains(strings.Join(notices, "\n"), `"passwd" refused: symbolic links are not uploaded`) {
		t.Errorf("notices = %q, want one refusing the passwd symlink", notices)
	}
	// Only one blob exists: the target of the link was never uploaded.
	keys := protocol.NewRunKeys("e2e", run.ID)
	if _, err := h.store.Get(ctx, keys.Blob(2)); !errors.Is(err, protocol.ErrNotFound) {
		t.Errorf("blob 2 exists (err %v): something besides ok.txt was uploaded", err)
	}
	if b, _ := h.store.Get(ctx, keys.Blob(1)); !bytes.Equal(b, []byte("fine")) {
		t.Errorf("blob 1 = %q, want %q", b, "fine")
	}
	entries, _ := os.ReadDir(outDir)
	if len(entries) != 1 {
		t.Errorf("outbox folder has %d entries, want 1", len(entries))
	}
	if _, err := os.Lstat(filepath.Join(outDir, "passwd")); err == nil {
		t.Error("the symlink reached the host's outbox folder")
	}
}
