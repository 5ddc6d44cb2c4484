package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/sortie/sortie/internal/coordinator"
	"github.com/sortie/sortie/internal/store"
	"github.com/sortie/sortie/pkg/protocol"
	"github.com/sortie/sortie/pkg/sortie"
)

type runFlags struct {
	image      string
	entrypoint string
	env        []string
	workdir    string
	workspace  string
	input      string
	timeout    time.Duration
	stopGrace  time.Duration
	vmDeadline time.Duration
	memory     string
	cpus       float64
	pids       int64
	pull       bool
	outbox     string
	jsonOut    bool
	messages   []string
	secrets    []string
	registry   string
	regUser    string
	user       string
	capAdd     []string
	readOnly   bool
}

func newRunCmd(g *globals) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run --image IMAGE [flags] [-- COMMAND [ARG...]]",
		Short: "Run an agent container on a fresh VM and stream what it does",
		Long: `Run starts one run on a fresh VM, streams its phases, logs and outbox files,
saves the outbox files into a local folder, prints the result and exits with a
code that reflects the run: 0 only for a successful agent; the agent's own
exit code when it failed; 124 timed out; 130 cancelled; 137 out of memory;
125 when Sortie itself failed (bad input, no VM, no result).

Ctrl-C once cancels the run (the agent gets SIGTERM, then SIGKILL after the
grace period); twice abandons it (the VM is deleted).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd.Context(), g, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.image, "image", "", "agent image (required)")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "replace the image's entrypoint (space-separated)")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "container environment NAME=value (repeatable)")
	fl.StringVar(&f.workdir, "workdir", "", "container working directory (default /workspace)")
	fl.StringVar(&f.workspace, "workspace", "", "local directory shipped to the VM as /workspace")
	fl.StringVar(&f.input, "input", "", "input JSON for the agent: a file name, or inline JSON starting with { or [")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Minute, "container timeout")
	fl.DurationVar(&f.stopGrace, "stop-grace", 10*time.Second, "time between the stop signal and the kill")
	fl.DurationVar(&f.vmDeadline, "vm-deadline", 0, "VM lifetime from start (default timeout + 10m)")
	fl.StringVar(&f.memory, "memory", "", "memory limit, such as 512m or 2g")
	fl.Float64Var(&f.cpus, "cpus", 0, "CPU limit, such as 1.5")
	fl.Int64Var(&f.pids, "pids", 0, "pids limit")
	fl.BoolVar(&f.pull, "pull", false, "let the VM pull the image when it is absent")
	fl.StringVar(&f.user, "user", "", "run the container as this user (uid[:gid] or name; default: the image's)")
	fl.StringArrayVar(&f.capAdd, "cap-add", nil, "keep this Linux capability (all are dropped by default; repeatable)")
	fl.BoolVar(&f.readOnly, "read-only", false, "read-only root filesystem (workspace, outbox and /tmp stay writable)")
	fl.StringVar(&f.outbox, "outbox", "", "folder for outbox files (default ./sortie-outbox/RUN-ID)")
	fl.BoolVar(&f.jsonOut, "json", false, "print events as JSON lines on stdout")
	fl.StringArrayVar(&f.messages, "message", nil, "follow-up message sent once the agent runs (repeatable)")
	fl.StringVar(&f.registry, "registry", "", "registry of a private image, as the image reference names it (such as ghcr.io): pull the image with --registry-user and $"+registryPasswordEnv+", sealed in the bootstrap bundle and sent to no other registry; implies --pull")
	fl.StringVar(&f.regUser, "registry-user", "", "user name for --registry; the password or token is read from $"+registryPasswordEnv+", never from a flag")
	fl.StringArrayVar(&f.secrets, "secret", nil, "pass the coordinator's environment variable NAME to the container as a secret: sealed in the bootstrap bundle, never in the store in clear, never printed (repeatable)")
	return cmd
}

func (f *runFlags) spec(args []string) (sortie.RunSpec, error) {
	var errs []error
	s := sortie.RunSpec{
		Image: f.image, Command: args, WorkDir: f.workdir, Workspace: f.workspace,
		Timeout: f.timeout, StopGrace: f.stopGrace, VMDeadline: f.vmDeadline, Pull: f.pull,
		User: f.user, CapAdd: f.capAdd, ReadOnlyRoot: f.readOnly,
	}
	if f.entrypoint != "" {
		s.Entrypoint = strings.Fields(f.entrypoint)
	}
	for _, kv := range f.env {
		k, v, ok := splitKV(kv)
		if !ok {
			errs = append(errs, fmt.Errorf("--env %q: want NAME=value", kv))
			continue
		}
		if s.Env == nil {
			s.Env = map[string]string{}
		}
		s.Env[k] = v
	}
	for _, name := range f.secrets {
		v, ok := os.LookupEnv(name)
		if !ok {
			errs = append(errs, fmt.Errorf("--secret %s: the variable is not set in this environment: export it first", name))
			continue
		}
		if s.Secrets == nil {
			s.Secrets = map[string]sortie.Secret{}
		}
		s.Secrets[name] = sortie.Secret(v)
	}
	if a, err := f.registryAuth(); err != nil {
		errs = append(errs, err)
	} else {
		s.Registry = a
	}
	if f.input != "" {
		in := strings.TrimSpace(f.input)
		if strings.HasPrefix(in, "{") || strings.HasPrefix(in, "[") {
			s.Input = json.RawMessage(in)
		} else if b, err := os.ReadFile(f.input); err != nil {
			errs = append(errs, fmt.Errorf("--input: %w", err))
		} else {
			s.Input = b
		}
	}
	if f.memory != "" {
		n, err := units.RAMInBytes(f.memory)
		if err != nil {
			errs = append(errs, fmt.Errorf("--memory %q: %w", f.memory, err))
		}
		s.Limits.MemoryBytes = n
	}
	s.Limits.NanoCPUs = int64(f.cpus * 1e9)
	s.Limits.PidsLimit = f.pids
	for i, m := range f.messages {
		if strings.TrimSpace(m) == "" {
			errs = append(errs, fmt.Errorf("--message %d is empty: give the follow-up text", i+1))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return s, err
	}
	return s, s.Validate()
}

// registryPasswordEnv holds the password of --registry: credentials come
// only from the environment, never from flags.
const registryPasswordEnv = "SORTIE_REGISTRY_PASSWORD"

// registryAuth returns the registry credentials of --registry, or nil.
func (f *runFlags) registryAuth() (*sortie.RegistryAuth, error) {
	if f.registry == "" {
		if f.regUser != "" {
			return nil, errors.New("--registry-user needs --registry SERVER: name the image's registry, such as ghcr.io")
		}
		return nil, nil
	}
	var errs []error
	if f.regUser == "" {
		errs = append(errs, fmt.Errorf("--registry %s needs --registry-user USER", f.registry))
	}
	pw, ok := os.LookupEnv(registryPasswordEnv)
	if !ok || pw == "" {
		errs = append(errs, fmt.Errorf("--registry %s: the password is read from %s, which is not set in this environment: export it first", f.registry, registryPasswordEnv))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &sortie.RegistryAuth{Server: f.registry, Username: f.regUser, Password: sortie.Secret(pw)}, nil
}

func runRun(ctx context.Context, g *globals, f *runFlags, args []string) error {
	spec, err := f.spec(args)
	if err != nil {
		return &ExitError{Code: ExitSortie, Err: err}
	}
	if f.outbox != "" {
		if err := coordinator.CheckWritableDir(f.outbox); err != nil {
			return &ExitError{Code: ExitSortie, Err: err}
		}
	}
	cl, err := g.open(ctx)
	if err != nil {
		return &ExitError{Code: ExitSortie, Err: err}
	}
	defer cl.Close()

	// The outbox folder is named after the run, so it is set after Start
	// would know the ID; pick the default root now and fill in below.
	outRoot := f.outbox
	run, err := startWithOutbox(ctx, cl, spec, outRoot)
	if err != nil {
		if store.Classify(err) != store.ProblemOther {
			err = fmt.Errorf("%w\n(the store refused or could not be reached: `coordinator doctor` says why in plain words)", err)
		}
		return &ExitError{Code: ExitSortie, Err: err}
	}
	p := newPrinter(g.stdout, g.stderr, f.jsonOut, run.ID)
	p.started(run)

	// Ctrl-C once cancels; twice abandons (the VM is deleted at once).
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	abandon := make(chan struct{})
	go func() {
		<-sigs
		p.note("cancelling run %s (Ctrl-C again to abandon it)", run.ID)
		go func() {
			if err := run.Cancel(context.WithoutCancel(ctx)); err != nil {
				p.note("cancel: %v", err)
			}
		}()
		<-sigs
		close(abandon)
	}()
	sent := false
	for {
		select {
		case <-abandon:
			p.note("abandoning run %s; deleting its VM", run.ID)
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			defer cancel()
			if err := run.Abandon(dctx); err != nil {
				return &ExitError{Code: ExitSortie, Err: fmt.Errorf("abandon: %w", err)}
			}
			return &ExitError{Code: ExitCancelled}
		case ev, ok := <-run.Events():
			if !ok {
				return finalExit(run)
			}
			p.event(ev)
			if !sent && ev.Type == protocol.EventPhase && ev.Phase.Name == protocol.PhaseStart {
				sent = true
				for _, m := range f.messages {
					if seq, err := run.Send(ctx, m); err != nil {
						p.note("could not send message: %v", err)
					} else {
						p.note("sent follow-up message %d", seq)
					}
				}
			}
		}
	}
}

// startWithOutbox starts the run; the default outbox folder is
// ./sortie-outbox/<run-id>, known only once the ID is minted, so the spec
// carries a placeholder resolved here.
func startWithOutbox(ctx context.Context, cl *sortie.Client, spec sortie.RunSpec, outRoot string) (*sortie.Run, error) {
	if outRoot != "" {
		abs, err := filepath.Abs(outRoot)
		if err != nil {
			return nil, err
		}
		spec.OutboxDir = abs
		return cl.Start(ctx, spec)
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	spec.OutboxDir = filepath.Join(wd, "sortie-outbox", "{run}")
	return cl.Start(ctx, spec)
}

func finalExit(run *sortie.Run) error {
	res, err := run.Wait(context.Background())
	if err != nil {
		return &ExitError{Code: ExitSortie, Err: err}
	}
	if lost := run.Unsaved(); len(lost) > 0 {
		return &ExitError{Code: ExitSortie, Err: fmt.Errorf("%d outbox %s could not be saved: %w", len(lost), plural(len(lost), "file", "files"), errors.Join(lost...))}
	}
	switch {
	case res.Succeeded():
		return nil
	case res.TimedOut, res.DeadlineExceeded:
		return &ExitError{Code: ExitTimedOut}
	case res.Cancelled:
		return &ExitError{Code: ExitCancelled}
	case res.OOMKilled:
		return &ExitError{Code: ExitOOM}
	case res.ExitCode > 0 && res.ExitCode < 256:
		return &ExitError{Code: res.ExitCode}
	}
	return &ExitError{Code: ExitSortie}
}

// printer shows events: for people on the terminal, or as JSON lines.
type printer struct {
	mu       sync.Mutex
	out, err io.Writer
	json     bool
	runID    string
	t0       time.Time
	enc      *json.Encoder
}

func newPrinter(out, errw io.Writer, asJSON bool, runID string) *printer {
	return &printer{out: out, err: errw, json: asJSON, runID: runID, t0: time.Now(), enc: json.NewEncoder(out)}
}

func (p *printer) note(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		_ = p.enc.Encode(map[string]any{"type": "note", "run_id": p.runID, "time": time.Now().UTC(), "text": fmt.Sprintf(format, a...)})
		return
	}
	fmt.Fprintf(p.err, "sortie: "+format+"\n", a...)
}

func (p *printer) started(run *sortie.Run) {
	if !p.json {
		fmt.Fprintf(p.err, "sortie: run %s started; VM deadline %s\n", run.ID, run.Deadline().Local().Format(time.TimeOnly))
	}
}

// jsonEvent is an event as a JSON line: log data as text when it is UTF-8.
type jsonEvent struct {
	sortie.Event
	Text string `json:"text,omitempty"`
}

func (p *printer) event(ev sortie.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		je := jsonEvent{Event: ev}
		if ev.Log != nil && utf8.Valid(ev.Log.Data) {
			l := *ev.Log
			je.Text, l.Data = string(ev.Log.Data), nil
			je.Event.Log = &l
		}
		_ = p.enc.Encode(je)
		return
	}
	switch ev.Type {
	case protocol.EventPhase:
		fmt.Fprintf(p.err, "sortie: %-11s %-13s %6d ms\n", ev.Source, ev.Phase.Name, ev.Phase.DurationMS)
	case protocol.EventLog:
		w := p.out
		if ev.Log.Stream == protocol.StreamStderr {
			w = p.err
		}
		_, _ = w.Write(ev.Log.Data)
	case protocol.EventOutbox:
		where := ""
		if ev.SavedPath != "" {
			where = " -> " + ev.SavedPath
		}
		fmt.Fprintf(p.err, "sortie: outbox %s (%s)%s\n", ev.Outbox.Name, humanBytes(ev.Outbox.Size), where)
	case protocol.EventMessage:
		fmt.Fprintf(p.err, "sortie: message %d delivered (%s)\n", ev.Message.Seq, ev.Message.Type)
	case protocol.EventNotice:
		fmt.Fprintf(p.err, "sortie: %s: %s\n", ev.Notice.Level, ev.Notice.Text)
	case "result":
		p.result(ev.Result)
	}
}

func (p *printer) result(r *protocol.Result) {
	w := p.err
	status := "succeeded"
	switch {
	case r.TimedOut:
		status = "timed out"
	case r.Cancelled:
		status = "cancelled"
	case r.OOMKilled:
		status = "out of memory"
	case r.DeadlineExceeded:
		status = "VM deadline exceeded"
	case !r.Succeeded():
		status = "failed"
	}
	code := "exit code " + strconv.Itoa(r.ExitCode)
	if r.ExitCode == -1 {
		code = "the agent never exited on its own"
	}
	fmt.Fprintf(w, "\nresult: %s, %s, %s\n", status, code, r.EndedAt.Sub(r.StartedAt).Round(time.Millisecond))
	if r.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", r.Error)
	}
	fmt.Fprintf(w, "  phases:")
	for _, ph := range r.Phases {
		fmt.Fprintf(w, " %s=%dms", ph.Name, ph.DurationMS)
	}
	fmt.Fprintln(w)
	for _, f := range r.Outbox {
		fmt.Fprintf(w, "  artifact: %s (%s, sha256 %s)\n", f.Name, humanBytes(f.Size), f.SHA256[:12])
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
