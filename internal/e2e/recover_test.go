package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/coordinator"
	"github.com/sortie/sortie/internal/coordinator/local"
	"github.com/sortie/sortie/pkg/protocol"
)

// TestLocalRecover: when a coordinator dies and its local VM dies with it,
// leaving the container running, the next coordinator on the same state
// directory removes the container and the VM's directory, even when the
// VM's own supervisor binary is broken; a live VM of another coordinator
// is left alone.
func TestLocalRecover(t *testing.T) {
	h := newHarness(t)
	run, err := h.c.Start(context.Background(), coordinator.RunSpec{Image: h.image, Command: []string{"-sleep", "forever"}, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for ev := range run.Events() {
		if ev.Type == protocol.EventPhase && ev.Phase.Name == protocol.PhaseStart {
			break
		}
	}
	// Kill the supervisor as a dying host would: no cleanup at all.
	pid := h.prov.PID(coordinator.VMName(run.ID))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(h.prov.Dir, coordinator.VMName(run.ID))
	deadline := time.Now().Add(10 * time.Second)
	for h.prov.PID(coordinator.VMName(run.ID)) != 0 && len(h.prov.Running()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	// A broken binary cannot sweep: the coordinator must do it itself
	// rather than keep the directory forever.
	if err := os.WriteFile(filepath.Join(dir, "vm-supervisor"), []byte("not a program"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A second local VM, alive, in the same directory.
	other := filepath.Join(h.prov.Dir, "sortie-other")
	if err := os.MkdirAll(other, 0o700); err != nil {
		t.Fatal(err)
	}
	sleepBin, err := os.ReadFile("/bin/sleep")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "vm-supervisor"), sleepBin, 0o755); err != nil {
		t.Fatal(err)
	}
	alive := exec.Command(filepath.Join(other, "vm-supervisor"), "60")
	if err := alive.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = alive.Process.Kill(); _ = alive.Wait() }()
	if err := os.WriteFile(filepath.Join(other, "pid"), []byte(itoa(int64(alive.Process.Pid))), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := local.Recover(context.Background(), h.prov.Dir, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("dead VM directory still there (%v)", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a live VM's directory was removed: %v", err)
	}
	h.assertNothingLeft(t, run.ID)
}
