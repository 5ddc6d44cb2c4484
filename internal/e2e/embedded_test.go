package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/testenv"
	"github.com/sortie/sortie/pkg/protocol"
	"github.com/sortie/sortie/pkg/sortie"
)

// TestEmbeddedDefault: with no bucket and no provider configured, the public
// API runs a whole run on this machine (embedded S3, local provider), the
// path `make demo` takes.
func TestEmbeddedDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: needs Docker")
	}
	testenv.Docker(t)
	image := testenv.TestAgentImage(t)
	dir := t.TempDir()
	sup := testenv.SupervisorBinary(t)
	ctx := context.Background()
	cl, err := sortie.Open(ctx, sortie.Options{StateDir: filepath.Join(dir, "state"), SupervisorPath: sup, PollMin: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ws := filepath.Join(dir, "ws")
	if err := os.MkdirAll(filepath.Join(ws, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "sub", "in.txt"), []byte("shipped"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	run, err := cl.Start(ctx, sortie.RunSpec{
		Image: image, Command: []string{"-outbox", "a.txt=one", "-copy", "/workspace/sub/in.txt=ws.txt", "-copy", "/sortie/input.json=input.json"},
		Workspace: ws, Input: []byte(`{"task":"x"}`), Timeout: time.Minute, OutboxDir: out,
	})
	if err != nil {
		t.Fatal(err)
	}
	var sawOutbox bool
	for ev := range run.Events() {
		if ev.Type == protocol.EventOutbox && ev.SavedPath != "" {
			sawOutbox = true
		}
	}
	res, err := run.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Succeeded() {
		t.Errorf("result = %+v, want success", res)
	}
	if !sawOutbox {
		t.Error("no outbox event with a saved path")
	}
	for name, want := range map[string]string{"a.txt": "one", "ws.txt": "shipped", "input.json": `{"task":"x"}`} {
		if b, err := os.ReadFile(filepath.Join(out, name)); err != nil || string(b) != want {
			t.Errorf("outbox %s = %q, %v; want %q", name, b, err, want)
		}
	}
}
