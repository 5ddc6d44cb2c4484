package supervisor_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/sortie/sortie/internal/supervisor"
	"github.com/sortie/sortie/internal/testenv"
	"github.com/sortie/sortie/pkg/protocol"
)

// dockerTestLabel marks every container these tests create.
const dockerTestLabel = "dev.sortie.test"

// newDockerRuntime returns the Docker runtime and the test agent's image,
// or skips the test when no engine answers.
func newDockerRuntime(t *testing.T) (*supervisor.Docker, string) {
	t.Helper()
	testenv.Docker(t)
	image := testenv.TestAgentImage(t)
	d, err := supervisor.NewDocker(t.Context())
	if err != nil {
		t.Fatalf("NewDocker: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d, image
}

// createAgent creates a test agent container with args, run as the test's
// own user so it can write into the test's directories, and removes it when
// the test ends.
func createAgent(t *testing.T, d *supervisor.Docker, cfg supervisor.ContainerConfig, args ...string) string {
	t.Helper()
	var suffix [4]byte
	rand.Read(suffix[:])
	if cfg.Name == "" {
		cfg.Name = "sortie-test-" + hex.EncodeToString(suffix[:])
	}
	if cfg.User == "" {
		cfg.User = fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	}
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	cfg.Labels[dockerTestLabel] = t.Name()
	cfg.Cmd = args
	id, err := d.Create(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := d.Remove(ctx, id); err != nil {
			t.Errorf("Remove %s: %v", id, err)
		}
	})
	return id
}

// lockedBuffer is a bytes.Buffer safe to read while the attach copy writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runAgent attaches, starts and waits for a created container and returns
// its exit status, stdout and stderr.
func runAgent(t *testing.T, d *supervisor.Docker, id string) (supervisor.ExitStatus, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var stdout, stderr lockedBuffer
	attached, err := d.Attach(ctx, id, &stdout, &stderr)
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if err := d.Start(ctx, id); err != nil {
		t.Fatalf("Start: %v", err)
	}
	st, err := d.Wait(ctx, id)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	select {
	case err := <-attached:
		if err != nil {
			t.Errorf("attach stream ended with %v, want nil", err)
		}
	case <-ctx.Done():
		t.Fatal("attach stream did not end after the container exited")
	}
	if _, open := <-attached; open {
		t.Error("attach channel not closed after its value")
	}
	return st, stdout.String(), stderr.String()
}

// awaitOutput waits until b has some output.
func awaitOutput(t *testing.T, ctx context.Context, b *lockedBuffer) {
	t.Helper()
	for b.String() == "" {
		select {
		case <-ctx.Done():
			t.Fatal("no output from the agent")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// checkNumberedLines checks that out is exactly the test agent's n bytes of
// numbered lines: complete and in order.
func checkNumberedLines(t *testing.T, out string, n int) {
	t.Helper()
	if len(out) != n {
		t.Errorf("stdout has %d bytes, want %d", len(out), n)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	filler := strings.Repeat("x", 90)
	i := 0
	for ; sc.Scan(); i++ {
		want := fmt.Sprintf("%08d %s", i, filler)
		if got := sc.Text(); got != want && !strings.HasPrefix(want, got) {
			t.Fatalf("stdout line %d = %.20q..., want %.20q...", i, got, want)
		}
	}
	if want := (n + 99) / 100; i != want {
		t.Errorf("stdout has %d lines, want %d", i, want)
	}
}

func TestDockerRunAgent(t *testing.T) {
	d, image := newDockerRuntime(t)
	inbox, outbox := t.TempDir(), t.TempDir()
	const logBytes = 1 << 20
	id := createAgent(t, d, supervisor.ContainerConfig{
		Image: image,
		Env:   []string{"SORTIE_INBOX=/sortie/inbox", "SORTIE_OUTBOX=/sortie/outbox"},
		Mounts: []supervisor.Mount{
			{Source: inbox, Target: "/sortie/inbox", ReadOnly: true},
			{Source: outbox, Target: "/sortie/outbox"},
		},
		ReadOnlyRootfs: true,
	},
		"-log-bytes", fmt.Sprint(logBytes),
		"-stderr", "something went sideways\n",
		"-outbox", "a.txt=hello",
		"-outbox-size", "b.bin=5000",
		"-symlink", "link=/etc/passwd",
		"-wait-message", "1m",
		"-exit", "3",
	)

	// The agent waits for an inbox message; deliver it the way the
	// supervisor does: a dot-temp file renamed into place.
	msg, _ := json.Marshal(protocol.Message{V: protocol.Version, Seq: 7, Type: protocol.MessageFollowUp, Text: "carry on"})
	tmp := filepath.Join(inbox, ".tmp-7")
	if err := os.WriteFile(tmp, msg, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(inbox, "000007.json")); err != nil {
		t.Fatal(err)
	}

	st, stdout, stderr := runAgent(t, d, id)
	if want := (supervisor.ExitStatus{Code: 3}); st != want {
		t.Errorf("exit status = %+v, want %+v", st, want)
	}
	checkNumberedLines(t, stdout, logBytes)
	if want := "something went sideways\n"; stderr != want {
		t.Errorf("stderr = %q, want %q", stderr, want)
	}

	entries, err := os.ReadDir(outbox)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"a.txt", "b.bin", "link", "reply-7.txt"}, names); diff != "" {
		t.Errorf("outbox entries (-want +got):\n%s", diff)
	}
	for name, want := range map[string]string{"a.txt": "hello", "reply-7.txt": "got: carry on"} {
		if b, err := os.ReadFile(filepath.Join(outbox, name)); err != nil || string(b) != want {
			t.Errorf("outbox %s = %q, %v; want %q", name, b, err, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(outbox, "b.bin")); err != nil || fi.Size() != 5000 {
		t.Errorf("outbox b.bin: %v, %v; want 5000 bytes", fi, err)
	}
}

func TestDockerCreateConfig(t *testing.T) {
	d, image := newDockerRuntime(t)
	ro, rw := t.TempDir(), t.TempDir()
	cfg := supervisor.ContainerConfig{
		Image:      image,
		Entrypoint: []string{"/testagent", "-exit", "0"},
		Env:        []string{"A=1"},
		WorkDir:    "/sortie/workspace",
		User:       "1000:1000",
		Mounts: []supervisor.Mount{
			{Source: ro, Target: "/sortie/inbox", ReadOnly: true},
			{Source: rw, Target: "/sortie/outbox"},
		},
		Limits: protocol.Limits{
			MemoryBytes: 256 << 20,
			NanoCPUs:    1_500_000_000,
			PidsLimit:   128,
		},
		Labels:         map[string]string{"dev.sortie.run": "run-1"},
		CapAdd:         []string{"chown", "CAP_NET_BIND_SERVICE"},
		ReadOnlyRootfs: true,
	}
	id := createAgent(t, d, cfg)

	c, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.ContainerInspect(t.Context(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := res.Container
	hc := got.HostConfig
	pids := int64(128)
	checks := []struct {
		name      string
		got, want any
	}{
		{"SecurityOpt", hc.SecurityOpt, []string{"no-new-privileges"}},
		{"CapDrop", hc.CapDrop, []string{"ALL"}},
		{"CapAdd", hc.CapAdd, []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE"}},
		{"Memory", hc.Memory, int64(256 << 20)},
		{"NanoCPUs", hc.NanoCPUs, int64(1_500_000_000)},
		{"PidsLimit", hc.PidsLimit, &pids},
		{"ReadonlyRootfs", hc.ReadonlyRootfs, true},
		{"Privileged", hc.Privileged, false},
		{"NetworkMode", string(hc.NetworkMode), "bridge"},
		{"RestartPolicy", string(hc.RestartPolicy.Name), "no"},
		{"AutoRemove", hc.AutoRemove, false},
		{"Mounts", hc.Mounts, []mount.Mount{
			{Type: mount.TypeBind, Source: ro, Target: "/sortie/inbox", ReadOnly: true},
			{Type: mount.TypeBind, Source: rw, Target: "/sortie/outbox"},
		}},
		{"User", got.Config.User, "1000:1000"},
		{"WorkingDir", got.Config.WorkingDir, "/sortie/workspace"},
		{"Entrypoint", got.Config.Entrypoint, []string{"/testagent", "-exit", "0"}},
		{"Env has A=1", slices.Contains(got.Config.Env, "A=1"), true},
		{"run label", got.Config.Labels["dev.sortie.run"], "run-1"},
		{"Tty", got.Config.Tty, false},
	}
	for _, c := range checks {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
}

func TestDockerStop(t *testing.T) {
	d, image := newDockerRuntime(t)
	tests := []struct {
		name string
		args []string
		want supervisor.ExitStatus
	}{
		// The agent exits on SIGTERM with 128+15.
		{"SIGTERM", nil, supervisor.ExitStatus{Code: 143}},
		// It ignores SIGTERM, so the kill after the grace ends it: 128+9.
		{"SIGKILL after grace", []string{"-ignore-term"}, supervisor.ExitStatus{Code: 137}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The agent sets up its signal handling before it writes; a
			// signal that came earlier would hit a PID 1 without a handler,
			// which the kernel drops.
			args := append(tt.args, "-log-bytes", "10", "-sleep", "forever")
			id := createAgent(t, d, supervisor.ContainerConfig{Image: image}, args...)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			var stdout lockedBuffer
			if _, err := d.Attach(ctx, id, &stdout, &stdout); err != nil {
				t.Fatal(err)
			}
			if err := d.Start(ctx, id); err != nil {
				t.Fatal(err)
			}
			awaitOutput(t, ctx, &stdout)
			waited := make(chan supervisor.ExitStatus, 1)
			go func() {
				st, err := d.Wait(ctx, id)
				if err != nil {
					t.Errorf("Wait: %v", err)
				}
				waited <- st
			}()
			if err := d.Stop(ctx, id, time.Second); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			if st := <-waited; st != tt.want {
				t.Errorf("exit status = %+v, want %+v", st, tt.want)
			}
			// Stopping a stopped container succeeds.
			if err := d.Stop(ctx, id, time.Second); err != nil {
				t.Errorf("second Stop: %v", err)
			}
		})
	}
}

func TestDockerAttachEndsWithContext(t *testing.T) {
	d, image := newDockerRuntime(t)
	id := createAgent(t, d, supervisor.ContainerConfig{Image: image}, "-log-bytes", "100", "-sleep", "forever")
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr lockedBuffer
	attached, err := d.Attach(ctx, id, &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	awaitOutput(t, ctx, &stdout)
	cancel()
	if err := <-attached; !errors.Is(err, context.Canceled) {
		t.Errorf("attach ended with %v, want %v", err, context.Canceled)
	}
	checkNumberedLines(t, stdout.String(), 100)
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestDockerAttachWriterFails(t *testing.T) {
	d, image := newDockerRuntime(t)
	id := createAgent(t, d, supervisor.ContainerConfig{Image: image}, "-log-bytes", "1000000", "-stderr", "bye", "-exit", "5")
	var stderr lockedBuffer
	attached, err := d.Attach(t.Context(), id, failingWriter{}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	// The container is not stalled by the failed writer: it runs to its exit.
	st, err := d.Wait(t.Context(), id)
	if err != nil || st.Code != 5 {
		t.Fatalf("Wait = %+v, %v; want code 5", st, err)
	}
	if err := <-attached; err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("attach ended with %v, want the writer's error", err)
	}
}

func TestDockerMissingImage(t *testing.T) {
	d, image := newDockerRuntime(t)
	ctx := t.Context()
	if ok, err := d.ImageExists(ctx, image); err != nil || !ok {
		t.Errorf("ImageExists(%q) = %v, %v; want true, nil", image, ok, err)
	}
	const missing = "sortie-test/does-not-exist:never"
	if ok, err := d.ImageExists(ctx, missing); err != nil || ok {
		t.Errorf("ImageExists(%q) = %v, %v; want false, nil", missing, ok, err)
	}
	// No registry answers at this loopback port (tests never reach beyond
	// 127.0.0.0/8): the pull must fail, within the context's time at the
	// latest.
	const unreachable = "127.0.0.1:9/sortie-test/does-not-exist:never"
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := d.Pull(pctx, unreachable, nil); err == nil {
		t.Errorf("Pull(%q) succeeded, want an error", unreachable)
	} else {
		t.Logf("Pull(%q): %v", unreachable, err)
	}
	if _, err := d.Create(ctx, supervisor.ContainerConfig{Image: missing}); err == nil {
		t.Errorf("Create from a missing image succeeded")
	}
}

func TestDockerRemove(t *testing.T) {
	d, image := newDockerRuntime(t)
	if err := d.Remove(t.Context(), "sortie-test-no-such-container"); err != nil {
		t.Errorf("Remove of a missing container: %v, want nil", err)
	}
	// A running container is removed by force, and removing it again is
	// still success.
	id := createAgent(t, d, supervisor.ContainerConfig{Image: image}, "-sleep", "forever")
	if err := d.Start(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := d.Remove(t.Context(), id); err != nil {
			t.Errorf("Remove: %v", err)
		}
	}
	c, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	list, err := c.ContainerList(t.Context(), client.ContainerListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, ctr := range list.Items {
		if ctr.ID == id {
			t.Errorf("container %s still listed after Remove (state %s)", id, ctr.State)
		}
	}
}
