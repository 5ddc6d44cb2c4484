package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/kardianos/service"
)

// ServiceName is the name of the supervisor's system service: the systemd
// unit sortie-supervisor.service.
const ServiceName = "sortie-supervisor"

// SystemdSystem is kardianos/service's name for its systemd implementation,
// one of service.AvailableSystems(), for ServiceOptions.System.
const SystemdSystem = "linux-systemd"

// DefaultBootPath is where cloud-init writes the boot file.
const DefaultBootPath = "/etc/sortie/boot.json"

// ExitNoRestart is the exit status for an error that no restart can mend
// (ErrBoot, ErrBundleGone): the unit's RestartPreventExitStatus.
const ExitNoRestart = 3

// RestartSec is how long systemd waits before it restarts a supervisor that
// failed.
const RestartSec = 2

// ExitCode is the process exit status for Run's error: 0 for nil,
// ExitNoRestart for an error a restart cannot mend, 1 otherwise.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrBoot), errors.Is(err, ErrBundleGone):
		return ExitNoRestart
	default:
		return 1
	}
}

// ServiceOptions says which supervisor service to install or control. The
// zero value of each field means its documented default.
type ServiceOptions struct {
	// BootPath is the boot file the service runs with. Default DefaultBootPath.
	BootPath string
	// Executable is the vm-supervisor binary the unit starts. Default: the
	// executable of this process.
	Executable string
	// System names the service manager implementation, one of
	// service.AvailableSystems() (SystemdSystem, say). Default: the one
	// kardianos/service detects on this machine.
	System string
	// UserService installs a per-user unit (systemd: under
	// $HOME/.config/systemd/user) instead of a system one. For tests.
	UserService bool
}

// systemdScript is kardianos/service's default systemd template (v1.3.0,
// rendered by its own small template engine) with these changes:
//   - Restart=on-failure (the Restart option) after RestartSec, not 120 s;
//   - RestartPreventExitStatus=ExitNoRestart: restarting cannot mend those;
//   - the start limit sits in [Unit] under its current name, and gives up
//     on a supervisor that fails ten times in a minute (the dead-man's
//     switch and the reaper remain);
//   - no EnvironmentFile=-/etc/sysconfig/<name>: nothing outside the unit
//     changes how the supervisor runs;
//   - arguments are not quoted, so ExecStart reads as the command line;
//     ServiceOptions.validate refuses paths that would need quoting.
var systemdScript = `[Unit]
Description={{Description}}
ConditionFileIsExecutable={{Path | cmdEscape}}
{{range Dependencies}}{{.}}
{{end}}StartLimitIntervalSec=60
StartLimitBurst=10

[Service]
ExecStart={{Path | cmdEscape}}{{range Arguments}} {{. | cmdEscape}}{{end}}
{{if ChRoot}}RootDirectory={{ChRoot | cmd}}
{{end}}{{if WorkingDirectory}}WorkingDirectory={{WorkingDirectory | cmdEscape}}
{{end}}{{if UserName}}User={{UserName}}
{{end}}{{if ReloadSignal}}ExecReload=/bin/kill -{{ReloadSignal}} "$MAINPID"
{{end}}{{if PIDFile}}PIDFile={{PIDFile | cmd}}
{{end}}{{if OutputFileSupport}}StandardOutput=file:{{LogDirectory}}/{{Name}}.out
StandardError=file:{{LogDirectory}}/{{Name}}.err
{{end}}{{if LimitNOFILE}}LimitNOFILE={{LimitNOFILE}}
{{end}}{{if Restart}}Restart={{Restart}}
{{end}}{{if SuccessExitStatus}}SuccessExitStatus={{SuccessExitStatus}}
{{end}}RestartSec=` + strconv.Itoa(RestartSec) + `
RestartPreventExitStatus=` + strconv.Itoa(ExitNoRestart) + `
{{range EnvVars}}{{.}}
{{end}}
[Install]
WantedBy=multi-user.target
`

// ServiceConfig returns the kardianos/service configuration of the
// supervisor's service: `<Executable> run --boot <BootPath>`, restarted on
// failure, after the network is online and Docker has started.
func ServiceConfig(o ServiceOptions) (*service.Config, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &service.Config{
		Name:        ServiceName,
		Description: "Sortie VM supervisor: runs this VM's one agent run",
		Executable:  o.Executable,
		Arguments:   []string{"run", "--boot", o.BootPath},
		Dependencies: []string{
			"After=network-online.target docker.service",
			"Wants=network-online.target",
		},
		Option: service.KeyValue{
			"Restart":       "on-failure",
			"SystemdScript": systemdScript,
			"UserService":   o.UserService,
		},
	}, nil
}

func (o *ServiceOptions) setDefaults() error {
	if o.BootPath == "" {
		o.BootPath = DefaultBootPath
	}
	if o.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("service: find this executable: %w", err)
		}
		o.Executable = exe
	}
	return nil
}

// validate refuses paths that the unit file would have to quote or that
// systemd would expand (%, $).
func (o *ServiceOptions) validate() error {
	var errs []error
	check := func(what, p string) {
		if !filepath.IsAbs(p) {
			errs = append(errs, fmt.Errorf("service: %s %q is not an absolute path", what, p))
		} else if i := strings.IndexFunc(p, unsafeInUnit); i >= 0 {
			r, _ := utf8.DecodeRuneInString(p[i:])
			errs = append(errs, fmt.Errorf("service: %s %q has a character a unit file would need to quote: %q", what, p, r))
		}
	}
	check("boot file", o.BootPath)
	check("executable", o.Executable)
	return errors.Join(errs...)
}

func unsafeInUnit(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return false
	case strings.ContainsRune("/._+-@,:=", r):
		return false
	}
	return true
}

// newService builds the service for o on the chosen system; prg is nil
// when the service is only controlled, not run.
func newService(o ServiceOptions, prg service.Interface, cfg *service.Config) (service.Service, error) {
	if prg == nil {
		prg = noProgram{}
	}
	if o.System == "" {
		s, err := service.New(prg, cfg)
		if err != nil {
			return nil, fmt.Errorf("service: %w", err)
		}
		return s, nil
	}
	var names []string
	for _, sys := range service.AvailableSystems() {
		if sys.String() == o.System {
			s, err := sys.New(prg, cfg)
			if err != nil {
				return nil, fmt.Errorf("service on %s: %w", o.System, err)
			}
			return s, nil
		}
		names = append(names, sys.String())
	}
	return nil, fmt.Errorf("service: no system %q here (have: %s)", o.System, strings.Join(names, ", "))
}

// noProgram is the service.Interface of a service that is only controlled.
type noProgram struct{}

func (noProgram) Start(service.Service) error { return nil }
func (noProgram) Stop(service.Service) error  { return nil }

// InstallService writes the supervisor's unit and enables it; it does not
// start it.
func InstallService(o ServiceOptions) error { return controlService(o, "install") }

// UninstallService disables the supervisor's unit and removes it.
func UninstallService(o ServiceOptions) error { return controlService(o, "uninstall") }

// StartService starts the installed supervisor service.
func StartService(o ServiceOptions) error { return controlService(o, "start") }

// StopService stops the supervisor service.
func StopService(o ServiceOptions) error { return controlService(o, "stop") }

// controlService runs action through service.Control, whose error names
// the action and the service.
func controlService(o ServiceOptions, action string) error {
	cfg, err := ServiceConfig(o)
	if err != nil {
		return err
	}
	s, err := newService(o, nil, cfg)
	if err != nil {
		return err
	}
	return service.Control(s, action)
}

// ServiceStatus reports the supervisor service's state: "running" or
// "stopped". The error wraps service.ErrNotInstalled when there is no unit.
func ServiceStatus(o ServiceOptions) (string, error) {
	cfg, err := ServiceConfig(o)
	if err != nil {
		return "", err
	}
	s, err := newService(o, nil, cfg)
	if err != nil {
		return "", err
	}
	st, err := s.Status()
	if err != nil {
		return "", fmt.Errorf("status of %s: %w", ServiceName, err)
	}
	switch st {
	case service.StatusRunning:
		return "running", nil
	case service.StatusStopped:
		return "stopped", nil
	default:
		return "", fmt.Errorf("status of %s: unknown", ServiceName)
	}
}

// RunService is Run for the vm-supervisor process. Started by the service
// manager, it runs under kardianos/service: the manager's stop (SIGTERM
// under systemd, which cancels ctx in cmd/vm-supervisor) cancels the run, and
// RunService returns Run's error once Run has returned. Started from a
// terminal or a container (the local provider), it calls Run directly.
func RunService(ctx context.Context, cfg Config) error {
	if service.Interactive() {
		return Run(ctx, cfg)
	}
	return runManaged(ctx, cfg, "")
}

// runManaged runs Run as a service.Interface on the named system (default:
// the detected one).
func runManaged(ctx context.Context, cfg Config, system string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &program{ctx: ctx, cancel: cancel, cfg: cfg, done: make(chan struct{})}
	s, err := newService(ServiceOptions{System: system}, p, &service.Config{
		Name: ServiceName,
		// kardianos/service waits for SIGTERM before it calls Stop; but a
		// run also ends on its own, and then the process must exit.
		Option: service.KeyValue{"RunWait": p.wait},
	})
	if err != nil {
		return err
	}
	err = s.Run()
	if !p.started.Load() {
		return fmt.Errorf("run as a service: %w", err)
	}
	<-p.done
	return p.err
}

// program is the supervisor as a service.Interface.
type program struct {
	ctx     context.Context
	cancel  context.CancelFunc
	cfg     Config
	started atomic.Bool
	done    chan struct{} // closed when Run has returned
	err     error         // Run's error, set before done is closed
}

// Start starts the run and returns at once.
func (p *program) Start(service.Service) error {
	if p.started.Swap(true) {
		return errors.New("the run has already started")
	}
	go func() {
		defer close(p.done)
		p.err = Run(p.ctx, p.cfg)
	}()
	return nil
}

// Stop cancels the run's context and returns at once; runManaged waits for
// Run to return.
func (p *program) Stop(service.Service) error {
	p.cancel()
	return nil
}

// wait returns when the run ends or its context is cancelled.
func (p *program) wait() {
	select {
	case <-p.ctx.Done():
	case <-p.done:
	}
}
