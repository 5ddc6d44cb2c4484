package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/sortie/sortie/internal/cloudinit"
	"github.com/sortie/sortie/internal/supervisor"
	"github.com/sortie/sortie/pkg/protocol"
)

// BootOptions tune how a Machine boots.
type BootOptions struct {
	// HTTPClient downloads the supervisor. Default: 2-minute timeout.
	HTTPClient *http.Client
	// DeadmanGrace is how long past the VM deadline the process may live,
	// like the dead-man's switch of a real VM. Default: cloudinit.DeadmanGrace.
	DeadmanGrace time.Duration
	// Env is extra environment for the supervisor (DOCKER_HOST, say).
	Env []string
	// Logger receives the machine's logs. Default: discard.
	Logger *slog.Logger
	// KeepLogs, when set, is a folder where Destroy keeps the supervisor's
	// log as <vm name>.log (for debugging, and for tests that read it).
	KeepLogs string
}

// Machine is one local VM: a vm-supervisor process booted from user-data.
type Machine struct {
	RunID string
	Dir   string

	cmd      *exec.Cmd
	env      []string
	keepLogs string
	exited   chan struct{}
	deadman  *time.Timer
}

// Boot does on this machine what a VM's cloud-init does with userData: it
// writes the boot file, downloads the supervisor over its presigned URL,
// checks its SHA-256 and starts it, in dir (created). The supervisor's
// self-destruct ends the process.
func Boot(ctx context.Context, dir string, userData []byte, o BootOptions) (m *Machine, err error) {
	params, err := cloudinit.Parse(userData)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir) // a VM that failed to boot leaves nothing
		}
	}()
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("local VM directory: %w", err)
	}
	bootPath := filepath.Join(dir, "boot.json")
	bootJSON, err := json.Marshal(&params.Boot)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(bootPath, bootJSON, 0o600); err != nil {
		return nil, fmt.Errorf("write boot file: %w", err)
	}
	bin := filepath.Join(dir, "vm-supervisor")
	if err := download(ctx, o.HTTPClient, params.SupervisorURL, params.SupervisorSHA256, bin); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "supervisor.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	// A local VM is a process on the developer's own host: its supervisor
	// must not touch the host's firewall (the metadata guard is off) nor
	// power the host off. The boot file's self-destruct mode holds
	// otherwise, so a delete mode still calls the (fake) cloud API.
	cmd := exec.Command(bin, "run", "--boot", bootPath, "--work-dir", filepath.Join(dir, "work"),
		"--no-power-off", "--metadata", "off")
	env := vmEnv(o.Env)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	// The VM dies with the coordinator's process (the embedded store does
	// too); SIGTERM lets the supervisor stop its container first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	err = startRetrying(cmd)
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("start vm-supervisor: %w", err)
	}
	m = &Machine{RunID: params.Boot.RunID, Dir: dir, cmd: cmd, env: env, keepLogs: o.KeepLogs, exited: make(chan struct{})}
	if err := os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		m.kill()
		return nil, err
	}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(m.exited)
	}()
	grace := o.DeadmanGrace
	if grace <= 0 {
		grace = cloudinit.DeadmanGrace
	}
	log := o.Logger
	m.deadman = time.AfterFunc(time.Until(params.Boot.Deadline.Add(grace)), func() {
		log.Warn("dead-man's switch: killing local VM", "dir", dir)
		m.kill()
	})
	return m, nil
}

// startRetrying starts cmd. A binary just written can be "text file busy"
// for a moment when another goroutine forks while the file is still open
// for writing (the child inherits the descriptor until it execs): retry.
func startRetrying(cmd *exec.Cmd) error {
	for i := 0; ; i++ {
		runtime.LockOSThread() // Pdeathsig follows the thread that forked
		err := cmd.Start()
		runtime.UnlockOSThread()
		if !errors.Is(err, syscall.ETXTBSY) || i == 20 {
			return err
		}
		time.Sleep(time.Duration(i+1) * 10 * time.Millisecond)
		// A failed Start leaves cmd unusable: start a copy.
		c := exec.Command(cmd.Path, cmd.Args[1:]...)
		c.Env, c.Stdout, c.Stderr, c.SysProcAttr = cmd.Env, cmd.Stdout, cmd.Stderr, cmd.SysProcAttr
		*cmd = *c
	}
}

// vmEnv is the environment of a local VM's supervisor: what a VM would
// have (a path, a home, how to reach Docker), never the coordinator's own
// variables, so a supervisor cannot come to rely on the host's credentials.
func vmEnv(extra []string) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG", "DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "DOCKER_API_VERSION"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, extra...)
}

// download fetches the supervisor like the install script's curl and
// sha256sum -c do.
func download(ctx context.Context, c *http.Client, url, wantSHA, dst string) error {
	if c == nil {
		c = &http.Client{Timeout: 2 * time.Minute}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return errors.New("download vm-supervisor: bad URL")
	}
	resp, err := c.Do(req)
	if err != nil {
		return errors.New("download vm-supervisor: the store did not answer")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download vm-supervisor: HTTP %d", resp.StatusCode)
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("download vm-supervisor: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != wantSHA {
		os.Remove(dst)
		return fmt.Errorf("vm-supervisor checksum mismatch: got %s, want %s", got, wantSHA)
	}
	return nil
}

// Exited is closed when the supervisor process has ended.
func (m *Machine) Exited() <-chan struct{} { return m.exited }

// Running reports whether the supervisor process still runs.
func (m *Machine) Running() bool {
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

// PID is the supervisor's process ID.
func (m *Machine) PID() int { return m.cmd.Process.Pid }

// kill ends the process group at once, like pulling a VM's plug.
func (m *Machine) kill() {
	if m.Running() {
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// Recover removes what dead local VMs left under dir: VMs whose process is
// gone (their coordinator was killed, say) get their containers swept and
// their directory removed. A VM whose process still runs belongs to a
// coordinator that is alive, perhaps another one sharing the state
// directory, and is left alone.
func Recover(ctx context.Context, dir string, extraEnv []string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		d := filepath.Join(dir, e.Name())
		if pidAlive(d) {
			continue
		}
		var boot protocol.Boot
		if b, err := os.ReadFile(filepath.Join(d, "boot.json")); err == nil && json.Unmarshal(b, &boot) == nil && boot.RunID != "" {
			if err := sweep(ctx, d, boot.RunID, vmEnv(extraEnv)); err != nil {
				errs = append(errs, fmt.Errorf("sweep containers of dead local VM %s: %w", e.Name(), err))
				continue
			}
		}
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// pidAlive reports whether the VM in dir has a live supervisor process:
// its pid file names a process whose executable is the VM's copy.
func pidAlive(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil {
		return false
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && exe == filepath.Join(dir, "vm-supervisor")
}

// Destroy removes the machine as deleting a VM would: it kills the process,
// removes the run's containers and the machine's directory.
func (m *Machine) Destroy(ctx context.Context) error {
	m.deadman.Stop()
	m.kill()
	select {
	case <-m.exited:
	case <-ctx.Done():
		return fmt.Errorf("local VM in %s did not exit: %w", m.Dir, ctx.Err())
	}
	if err := sweep(ctx, m.Dir, m.RunID, m.env); err != nil {
		return fmt.Errorf("remove containers of local VM in %s: %w", m.Dir, err)
	}
	if m.keepLogs != "" {
		if b, err := os.ReadFile(filepath.Join(m.Dir, "supervisor.log")); err == nil {
			_ = os.MkdirAll(m.keepLogs, 0o700)
			_ = os.WriteFile(filepath.Join(m.keepLogs, filepath.Base(m.Dir)+".log"), b, 0o600)
		}
	}
	if err := os.RemoveAll(m.Dir); err != nil {
		return fmt.Errorf("remove local VM directory: %w", err)
	}
	return nil
}

// sweep removes the containers of a local VM's run. The VM's own supervisor
// binary does it, in the VM's environment; when that binary cannot (it is
// missing, or not a vm-supervisor at all), this process does it, so a
// broken VM directory is still cleaned up rather than retried forever.
func sweep(ctx context.Context, dir, runID string, env []string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "vm-supervisor"), "sweep", "--run", runID)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	if ferr := supervisor.Sweep(ctx, runID); ferr != nil {
		return fmt.Errorf("the VM's supervisor: %v: %s; this process: %w", err, bytes.TrimSpace(out), ferr)
	}
	return nil
}
