// Package local is the provider of the embedded default: a "VM" is a
// vm-supervisor process on this machine, booted from the run's cloud-init
// user-data exactly as cloud-init would boot it on a real VM. It downloads
// the supervisor over the presigned URL, checks its SHA-256, writes the boot
// file and starts the supervisor; the supervisor's self-destruct ends the
// process, and the provider then reports the VM gone. A dead-man's switch
// kills the process at the VM deadline, as the real one powers a VM off.
package local

import (
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
	"sync"
	"syscall"
	"time"

	"github.com/sortie/sortie/internal/cloudinit"
	"github.com/sortie/sortie/internal/coordinator"
	"github.com/sortie/sortie/pkg/protocol"
)

// Provider boots local VMs under Dir.
type Provider struct {
	// Dir holds one directory per VM. Required.
	Dir string
	// Logger receives the provider's logs. Default: discard.
	Logger *slog.Logger
	// HTTPClient downloads the supervisor. Default: 2-minute timeout.
	HTTPClient *http.Client
	// DeadmanGrace is how long past the VM deadline the process may live.
	// Default 30 s.
	DeadmanGrace time.Duration
	// Env is extra environment for the supervisor processes (DOCKER_HOST, say).
	Env []string

	mu  sync.Mutex
	vms map[string]*vm
}

type vm struct {
	runID   string
	dir     string
	cmd     *exec.Cmd
	exited  chan struct{}
	deadman *time.Timer
}

// Name implements coordinator.Provider.
func (p *Provider) Name() string { return "local" }

// SelfDestruct implements coordinator.Provider: a local VM's self-destruct
// ends its process.
func (p *Provider) SelfDestruct() string { return protocol.SelfDestructExit }

func (p *Provider) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return p.Logger
}

// Create boots a VM from req.UserData.
func (p *Provider) Create(ctx context.Context, req coordinator.CreateRequest) (*coordinator.VM, error) {
	params, err := cloudinit.Parse(req.UserData)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.vms == nil {
		p.vms = map[string]*vm{}
	}
	if _, dup := p.vms[req.Name]; dup {
		p.mu.Unlock()
		return nil, fmt.Errorf("a VM named %q exists already", req.Name)
	}
	p.vms[req.Name] = nil // reserve the name
	p.mu.Unlock()
	v, err := p.boot(ctx, req, params)
	p.mu.Lock()
	if err != nil {
		delete(p.vms, req.Name)
	} else {
		p.vms[req.Name] = v
	}
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &coordinator.VM{ID: req.Name, Name: req.Name, RunID: req.RunID, Created: time.Now()}, nil
}

// boot does what the user-data's install script does on a real VM.
func (p *Provider) boot(ctx context.Context, req coordinator.CreateRequest, params *cloudinit.Params) (*vm, error) {
	dir := filepath.Join(p.Dir, req.Name)
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
	if err := p.download(ctx, params.SupervisorURL, params.SupervisorSHA256, bin); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "supervisor.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--boot", bootPath, "--work-dir", filepath.Join(dir, "work"),
		"--self-destruct", protocol.SelfDestructExit)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The VM dies with the coordinator's process (the embedded store does
	// too); SIGTERM lets the supervisor stop its container first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	runtime.LockOSThread() // Pdeathsig follows the thread that forked
	err = cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("start vm-supervisor: %w", err)
	}
	v := &vm{runID: req.RunID, dir: dir, cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(v.exited)
	}()
	grace := p.DeadmanGrace
	if grace <= 0 {
		grace = 30 * time.Second
	}
	v.deadman = time.AfterFunc(time.Until(params.Boot.Deadline.Add(grace)), func() {
		p.logger().Warn("dead-man's switch: killing local VM", "vm", req.Name)
		kill(v)
	})
	return v, nil
}

// download fetches the supervisor like the install script's curl and
// sha256sum -c do.
func (p *Provider) download(ctx context.Context, url, wantSHA, dst string) error {
	c := p.HTTPClient
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

// Gone implements coordinator.Gone: the supervisor process has exited.
func (p *Provider) Gone(cv *coordinator.VM) bool {
	p.mu.Lock()
	v := p.vms[cv.Name]
	p.mu.Unlock()
	if v == nil {
		return true
	}
	select {
	case <-v.exited:
		return true
	default:
		return false
	}
}

// Delete kills the VM's process and removes what it left: its containers
// (a real VM takes them with it) and its directory.
func (p *Provider) Delete(ctx context.Context, cv *coordinator.VM) error {
	p.mu.Lock()
	v := p.vms[cv.Name]
	delete(p.vms, cv.Name)
	p.mu.Unlock()
	if v == nil {
		return nil // already gone
	}
	v.deadman.Stop()
	kill(v)
	select {
	case <-v.exited:
	case <-ctx.Done():
		return fmt.Errorf("local VM %s did not exit: %w", cv.Name, ctx.Err())
	}
	// The supervisor binary can sweep the containers of its run.
	bin := filepath.Join(v.dir, "vm-supervisor")
	cmd := exec.CommandContext(ctx, bin, "sweep", "--run", cv.RunID)
	cmd.Env = append(os.Environ(), p.Env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("remove containers of local VM %s: %v: %s", cv.Name, err, out)
	}
	if err := os.RemoveAll(v.dir); err != nil {
		return fmt.Errorf("remove local VM directory: %w", err)
	}
	return nil
}

// kill ends a VM's process group at once, like pulling a VM's plug.
func kill(v *vm) {
	select {
	case <-v.exited:
		return
	default:
	}
	_ = syscall.Kill(-v.cmd.Process.Pid, syscall.SIGKILL)
}

// Running returns the names of the VMs whose processes still run.
func (p *Provider) Running() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for name, v := range p.vms {
		if v == nil {
			continue
		}
		select {
		case <-v.exited:
		default:
			out = append(out, name)
		}
	}
	return out
}

// Shutdown deletes every VM this provider started.
func (p *Provider) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	names := make([]string, 0, len(p.vms))
	for name := range p.vms {
		names = append(names, name)
	}
	p.mu.Unlock()
	var errs []error
	for _, name := range names {
		p.mu.Lock()
		v := p.vms[name]
		p.mu.Unlock()
		if v == nil {
			continue
		}
		errs = append(errs, p.Delete(ctx, &coordinator.VM{ID: name, Name: name, RunID: v.runID}))
	}
	return errors.Join(errs...)
}

// PID returns the process ID of a running VM, or 0.
func (p *Provider) PID(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if v := p.vms[name]; v != nil {
		return v.cmd.Process.Pid
	}
	return 0
}
