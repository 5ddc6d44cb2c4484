// Package local is the provider of the embedded default: a "VM" is a
// vm-supervisor process on this machine, booted from the run's cloud-init
// user-data exactly as cloud-init would boot it on a real VM. It downloads
// the supervisor over the presigned URL, checks its SHA-256, writes the boot
// file and starts the supervisor; the supervisor's self-destruct ends the
// process, and the provider then reports the VM gone. A dead-man's switch
// kills the process past the VM deadline, as the real one powers a VM off.
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

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
	// Default: as on a real VM.
	DeadmanGrace time.Duration
	// Env is extra environment for the supervisor processes (DOCKER_HOST, say).
	Env []string
	// KeepLogs, when set, keeps each VM's supervisor log there.
	KeepLogs string

	mu  sync.Mutex
	vms map[string]*Machine // nil value: a create under way
}

// Name implements coordinator.Provider.
func (p *Provider) Name() string { return "local" }

// SelfDestruct implements coordinator.Provider: a local VM's self-destruct
// ends its process.
func (p *Provider) SelfDestruct() string { return protocol.SelfDestructExit }

// Create boots a VM from req.UserData.
func (p *Provider) Create(ctx context.Context, req coordinator.CreateRequest) (*coordinator.VM, error) {
	p.mu.Lock()
	if p.vms == nil {
		p.vms = map[string]*Machine{}
	}
	if _, dup := p.vms[req.Name]; dup {
		p.mu.Unlock()
		return nil, fmt.Errorf("a VM named %q exists already", req.Name)
	}
	p.vms[req.Name] = nil // reserve the name
	p.mu.Unlock()
	m, err := Boot(ctx, filepath.Join(p.Dir, req.Name), req.UserData, BootOptions{
		HTTPClient: p.HTTPClient, DeadmanGrace: p.DeadmanGrace, Env: p.Env, Logger: p.Logger, KeepLogs: p.KeepLogs,
	})
	p.mu.Lock()
	if err != nil {
		delete(p.vms, req.Name)
	} else {
		p.vms[req.Name] = m
	}
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &coordinator.VM{ID: req.Name, Name: req.Name, RunID: req.RunID, Created: time.Now()}, nil
}

func (p *Provider) machine(name string) *Machine {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.vms[name]
}

// Gone implements coordinator.Gone: the supervisor process has exited.
func (p *Provider) Gone(vm *coordinator.VM) bool {
	m := p.machine(vm.Name)
	return m == nil || !m.Running()
}

// Delete kills the VM's process and removes what it left: its containers
// (a real VM takes them with it) and its directory.
func (p *Provider) Delete(ctx context.Context, vm *coordinator.VM) error {
	p.mu.Lock()
	m := p.vms[vm.Name]
	delete(p.vms, vm.Name)
	p.mu.Unlock()
	if m == nil {
		return nil // already gone
	}
	return m.Destroy(ctx)
}

// Running returns the names of the VMs whose processes still run.
func (p *Provider) Running() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for name, m := range p.vms {
		if m != nil && m.Running() {
			out = append(out, name)
		}
	}
	return out
}

// PID returns the process ID of a running VM, or 0.
func (p *Provider) PID(name string) int {
	if m := p.machine(name); m != nil {
		return m.PID()
	}
	return 0
}

// Recover removes what dead local VMs left in the provider's directory
// (see the package function Recover).
func (p *Provider) Recover(ctx context.Context) error { return Recover(ctx, p.Dir, p.Env) }

// Shutdown deletes every VM this provider started.
func (p *Provider) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	var all []*coordinator.VM
	for name, m := range p.vms {
		if m != nil {
			all = append(all, &coordinator.VM{ID: name, Name: name, RunID: m.RunID})
		}
	}
	p.mu.Unlock()
	var errs []error
	for _, vm := range all {
		errs = append(errs, p.Delete(ctx, vm))
	}
	return errors.Join(errs...)
}
