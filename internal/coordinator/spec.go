package coordinator

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/sortie/sortie/pkg/protocol"
)

// RunSpec is what a host asks to run.
type RunSpec struct {
	// Image is the agent image; required.
	Image string `yaml:"image" json:"image"`
	// Entrypoint replaces the image's entrypoint when set.
	Entrypoint []string `yaml:"entrypoint" json:"entrypoint,omitempty"`
	// Command replaces the image's default command when set.
	Command []string `yaml:"command" json:"command,omitempty"`
	// Env is the container's environment. It is written to the store in
	// clear (spec.json): put credentials in Secrets instead.
	Env map[string]string `yaml:"env" json:"env,omitempty"`
	// Secrets are more environment variables for the container; they
	// travel only inside the sealed bootstrap bundle, never in spec.json,
	// user-data, logs or events.
	Secrets map[string]protocol.Secret `yaml:"-" json:"-"`
	// Registry are credentials for pulling Image from a private registry.
	// Like Secrets they travel only inside the sealed bootstrap bundle.
	// Registry.Server must be the image's registry (the VM sends them to
	// no other), and setting them lets the VM pull the image, as Pull does.
	Registry *protocol.RegistryAuth `yaml:"-" json:"-"`
	// WorkDir is the container's working directory. Default /workspace.
	WorkDir string `yaml:"workdir" json:"workdir,omitempty"`
	// Workspace is a local directory shipped to the VM and mounted at
	// /workspace. Optional.
	Workspace string `yaml:"workspace" json:"workspace,omitempty"`
	// Input is a JSON document handed to the agent at /sortie/input.json.
	Input json.RawMessage `yaml:"-" json:"input,omitempty"`
	// Timeout is the container timeout; required, > 0.
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
	// StopGrace is the time between the stop signal and the kill. Zero
	// means the default, 10 s. It never runs past the VM deadline.
	StopGrace time.Duration `yaml:"stop_grace" json:"stop_grace,omitempty"`
	// VMDeadline is the VM's lifetime from Start; the VM is gone by then
	// whatever happens. Default: Timeout + 10 min.
	VMDeadline time.Duration `yaml:"vm_deadline" json:"vm_deadline,omitempty"`
	// Limits are the container's memory, CPU and pids limits.
	Limits protocol.Limits `yaml:"limits" json:"limits"`
	// Pull lets the VM pull the image when it is not present.
	Pull bool `yaml:"pull" json:"pull,omitempty"`
	// User overrides the image's user ("uid[:gid]" or a name).
	User string `yaml:"user" json:"user,omitempty"`
	// CapAdd keeps these capabilities; all others are dropped (default:
	// none kept).
	CapAdd []string `yaml:"cap_add" json:"cap_add,omitempty"`
	// ReadOnlyRoot makes the container's root filesystem read-only.
	ReadOnlyRoot bool `yaml:"read_only_root" json:"read_only_root,omitempty"`
	// OutboxDir is where outbox files are saved; "{run}" in it becomes the
	// run ID. Empty: not saved (the events still describe them).
	OutboxDir string `yaml:"outbox_dir" json:"outbox_dir,omitempty"`
}

// reservedEnv are the variables the supervisor sets in every container.
var reservedEnv = map[string]bool{
	"SORTIE_RUN_ID": true, "SORTIE_WORKSPACE": true, "SORTIE_INBOX": true, "SORTIE_OUTBOX": true, "SORTIE_INPUT": true,
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate says everything that is wrong with s at once, in words that
// say what to fix.
func (s *RunSpec) Validate() error {
	var errs []error
	if strings.TrimSpace(s.Image) == "" {
		errs = append(errs, errors.New("image is required: name the agent image to run"))
	}
	if s.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout must be positive, got %s", s.Timeout))
	} else if s.Timeout < time.Second {
		errs = append(errs, fmt.Errorf("timeout must be at least 1s, got %s", s.Timeout))
	}
	if s.StopGrace < 0 {
		errs = append(errs, fmt.Errorf("stop grace must not be negative, got %s", s.StopGrace))
	}
	if s.VMDeadline < 0 {
		errs = append(errs, fmt.Errorf("VM deadline must not be negative, got %s", s.VMDeadline))
	} else if s.VMDeadline > 0 && s.VMDeadline <= s.Timeout {
		errs = append(errs, fmt.Errorf("VM deadline (%s) must be longer than the timeout (%s)", s.VMDeadline, s.Timeout))
	}
	for k := range s.Env {
		if !envName.MatchString(k) {
			errs = append(errs, fmt.Errorf("environment variable name %q is not valid", k))
		}
		if reservedEnv[k] {
			errs = append(errs, fmt.Errorf("environment variable %s is set by Sortie for the agent (see docs/agent-contract.md): choose another name", k))
		}
	}
	for k := range s.Secrets {
		if !envName.MatchString(k) {
			errs = append(errs, fmt.Errorf("secret name %q is not a valid environment variable name", k))
		}
		if reservedEnv[k] {
			errs = append(errs, fmt.Errorf("secret %s is an environment variable Sortie sets for the agent (see docs/agent-contract.md): choose another name", k))
		}
		if _, dup := s.Env[k]; dup {
			errs = append(errs, fmt.Errorf("%q is both an environment variable and a secret: keep one", k))
		}
	}
	if s.Registry != nil {
		errs = append(errs, checkRegistry(s.Registry, s.Image)...)
	}
	if s.Workspace != "" {
		fi, err := os.Stat(s.Workspace)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("workspace %q does not exist or cannot be read: %w", s.Workspace, err))
		case !fi.IsDir():
			errs = append(errs, fmt.Errorf("workspace %q is not a directory", s.Workspace))
		}
	}
	if len(s.Input) > 0 && !json.Valid(s.Input) {
		errs = append(errs, errors.New("input is not valid JSON"))
	}
	for _, l := range []struct {
		name string
		v    int64
		show string
	}{
		{"memory", s.Limits.MemoryBytes, fmt.Sprintf("%d bytes", s.Limits.MemoryBytes)},
		{"CPU", s.Limits.NanoCPUs, fmt.Sprintf("%g CPUs", float64(s.Limits.NanoCPUs)/1e9)},
		{"pids", s.Limits.PidsLimit, fmt.Sprint(s.Limits.PidsLimit)},
	} {
		if l.v < 0 {
			errs = append(errs, fmt.Errorf("%s limit must not be negative, got %s", l.name, l.show))
		}
	}
	if s.WorkDir != "" && !strings.HasPrefix(s.WorkDir, "/") {
		errs = append(errs, fmt.Errorf("workdir %q must be an absolute path in the container", s.WorkDir))
	}
	if s.OutboxDir != "" {
		if fi, err := os.Stat(s.OutboxDir); err == nil && !fi.IsDir() {
			errs = append(errs, fmt.Errorf("outbox folder %q is a file, not a folder", s.OutboxDir))
		}
	}
	if s.Limits.MemoryBytes > 0 && s.Limits.MemoryBytes < 6<<20 {
		errs = append(errs, errors.New("memory limit must be at least 6 MiB (Docker's minimum)"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid run spec: %w", err)
	}
	return nil
}

func (s *RunSpec) withDefaults() RunSpec {
	out := *s
	if out.StopGrace == 0 {
		out.StopGrace = 10 * time.Second
	}
	if out.VMDeadline == 0 {
		out.VMDeadline = out.Timeout + 10*time.Minute
	}
	return out
}

// protocolSpec is the spec as the VM reads it.
func (s *RunSpec) protocolSpec(runID string, now, deadline time.Time, workspace bool) *protocol.Spec {
	return &protocol.Spec{
		V: protocol.Version, RunID: runID, Image: s.Image,
		Entrypoint: s.Entrypoint, Command: s.Command, Env: s.Env, WorkDir: s.WorkDir,
		Workspace: workspace, Input: s.Input,
		TimeoutMS: s.Timeout.Milliseconds(), StopGraceMS: s.StopGrace.Milliseconds(),
		Deadline: deadline.UTC(), Limits: s.Limits, Pull: s.Pull || s.Registry != nil, CreatedAt: now.UTC(),
		User: s.User, CapAdd: s.CapAdd, ReadOnlyRoot: s.ReadOnlyRoot,
	}
}
