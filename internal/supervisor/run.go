package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sortie/sortie/pkg/protocol"
)

// run is one run, from the bundle to the result.
type run struct {
	cfg  *Config
	boot *protocol.Boot
	log  *slog.Logger

	store protocol.Store
	book  *bookStore // the store, in the presigned access mode
	// access is the store when the host renews its access (presigned, sts).
	access refillable

	inboxCtx context.Context // the inbox poller's lifetime: until the result
	inboxWG  sync.WaitGroup
	keys     protocol.RunKeys
	secrets  map[string]protocol.Secret
	registry *protocol.RegistryAuth
	// selfDelete is the delete self-destruct's token and server.
	selfDelete *protocol.SelfDelete
	mb         *mailbox
	phases     *phaseTimer
	result     protocol.Result
}

// finalTimeout bounds the last writes (events, result) after the run ends,
// even when the VM deadline has passed.
const finalTimeout = 20 * time.Second

func (r *run) run(ctx context.Context) error {
	bundle, err := r.fetchBundle(ctx)
	if err != nil {
		return err
	}
	if bundle.RunID != r.boot.RunID {
		return fmt.Errorf("bootstrap bundle is for run %q, boot file says %q", bundle.RunID, r.boot.RunID)
	}
	r.secrets = bundle.Secrets
	r.registry = bundle.Registry
	r.selfDelete = bundle.SelfDelete
	r.keys = protocol.NewRunKeys(bundle.Store.Prefix, r.boot.RunID)
	switch bundle.Store.Mode {
	case protocol.AccessPresigned:
		r.book, err = newBookStore(r.keys.Root(), bundle.Store.Book)
		r.store, r.access = r.book, r.book
	case protocol.AccessSTS:
		var ss *sessionStore
		ss, err = newSessionStore(ctx, bundle.Store, r.cfg.OpenStore)
		r.store, r.access = ss, ss
	default:
		r.store, err = r.cfg.OpenStore(ctx, bundle.Store)
	}
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	r.mb = newMailbox(r.store, r.keys, r.boot.RunID, r.log)
	r.phases = &phaseTimer{mb: r.mb}
	r.result = protocol.Result{V: protocol.Version, RunID: r.boot.RunID, ExitCode: -1, StartedAt: r.cfg.started.UTC()}

	// A hello already there means this supervisor restarted after claiming
	// the run: the container and its streams are lost, and events must not
	// be renumbered. Say so in a result and end the run.
	if _, err := r.store.Get(ctx, r.keys.Hello()); err == nil {
		return r.abandonRestarted(ctx)
	} else if !errors.Is(err, protocol.ErrNotFound) {
		return fmt.Errorf("check for an earlier claim: %w", err)
	}
	hello := protocol.Hello{
		V: protocol.Version, RunID: r.boot.RunID, SupervisorVersion: r.cfg.Version,
		Hostname: hostname(), Arch: arch(), StartedAt: r.cfg.started.UTC(),
		BootMS: time.Since(r.cfg.started).Milliseconds(), Time: time.Now().UTC(),
	}
	if err := protocol.PutJSON(ctx, r.store, r.keys.Hello(), &hello); err != nil {
		return fmt.Errorf("write hello: %w", err)
	}
	r.phases.add(protocol.PhaseBootstrap, time.Since(r.cfg.started))
	r.log.Info("run claimed")

	// The mailbox loop outlives ctx (the VM deadline) so that the final
	// events and the result still go out; it ends with the run.
	final := context.WithoutCancel(ctx)
	mbCtx, stopMB := context.WithCancel(final)
	mbDone := make(chan struct{})
	go func() { defer close(mbDone); r.mb.loop(mbCtx, r.cfg.EventBatch, r.cfg.Heartbeat) }()

	// The inbox is read until the result is written: after the container
	// exits, refills of presigned URLs may still be needed to flush.
	inboxCtx, stopInbox := context.WithCancel(final)
	r.inboxCtx = inboxCtx
	defer func() { stopInbox(); r.inboxWG.Wait() }()
	runErr := r.execute(ctx)
	if runErr != nil {
		r.result.Error = runErr.Error()
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		r.result.DeadlineExceeded = true
		r.result.Error = "the VM deadline passed before the run ended"
	case ctx.Err() != nil:
		r.result.Error = "the supervisor was stopped (the VM is shutting down) before the run ended"
	}
	stopMB()
	<-mbDone
	return r.finish(final)
}

// abandonRestarted ends a run whose supervisor restarted after the claim:
// it removes the old container, continues the event sequence after the last
// durable event, and writes a result that says what happened.
func (r *run) abandonRestarted(ctx context.Context) error {
	r.log.Error("supervisor restarted after claiming the run; the run cannot be resumed")
	var st protocol.Status
	if err := protocol.GetJSON(ctx, r.store, r.keys.Status(), &st); err == nil {
		r.mb.nextSeq = st.LastEvent + 1
		r.mb.durable = st.LastEvent
		r.mb.inboxNext = st.InboxNext
	}
	if rt := r.cfg.Runtime; rt != nil {
		_ = rt.Remove(ctx, containerName(r.boot.RunID))
	} else if err := Sweep(ctx, r.boot.RunID); err != nil {
		r.log.Warn("remove the lost container", "err", err)
	}
	r.result.Error = "the supervisor restarted after it had claimed the run (it crashed or the VM rebooted); the agent's container was lost"
	return r.finish(context.WithoutCancel(ctx))
}

// finish flushes every event, then writes the result: the commit marker.
func (r *run) finish(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, finalTimeout)
	defer cancel()
	r.phases.end()
	var err error
	for attempt := 0; ; attempt++ {
		if err = r.mb.flush(ctx); err == nil {
			break
		}
		if errors.Is(err, errNoURL) {
			// Presigned mode, book spent: the status tells the host where
			// to sign from, and the inbox poller applies its refill.
			_ = r.mb.writeStatus(ctx)
		} else if attempt >= 4 {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(min(attempt+1, 5)) * 200 * time.Millisecond):
			continue
		}
		break
	}
	if err != nil {
		return fmt.Errorf("flush events: %w", err)
	}
	r.result.Phases = r.phases.all()
	r.mb.mu.Lock()
	r.result.LastEvent = r.mb.durable
	r.mb.mu.Unlock()
	r.result.EndedAt = time.Now().UTC()
	if r.result.Outbox == nil {
		r.result.Outbox = []protocol.OutboxFile{}
	}
	for attempt := 0; attempt < 5; attempt++ {
		if err = protocol.PutJSON(ctx, r.store, r.keys.Result(), &r.result); err == nil {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	r.mb.setPhase(protocol.PhaseDone)
	_ = r.mb.writeStatus(ctx)
	r.log.Info("result written", "exit_code", r.result.ExitCode, "error", r.result.Error)
	return nil
}

// execute reads the spec and runs the container. Its error becomes the
// result's error; the agent's own exit code is not an error.
func (r *run) execute(ctx context.Context) error {
	r.phases.begin(protocol.PhaseSpec)
	var spec protocol.Spec
	if err := protocol.GetJSON(ctx, r.store, r.keys.Spec(), &spec); err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	if err := checkSpec(&spec, r.boot.RunID); err != nil {
		return err
	}
	rt := r.cfg.Runtime
	if rt == nil {
		d, err := NewDocker(ctx)
		if err != nil {
			return fmt.Errorf("connect to Docker: %w", err)
		}
		if err := r.cutOffMetadata(ctx, d); err != nil {
			return err
		}
		rt = d
	}

	dirs, err := r.prepareDirs(ctx, &spec)
	if err != nil {
		return err
	}

	// The inbox is read from here on, not only once the container runs:
	// renewed store access must reach the supervisor during a long pull,
	// and a cancel must stop the pull.
	cancelled := make(chan struct{})
	r.startInbox(dirs.inbox, cancelled)
	pctx, stopPull := context.WithCancel(ctx)
	defer stopPull()
	go func() {
		select {
		case <-cancelled:
			stopPull()
		case <-pctx.Done():
		}
	}()
	r.phases.begin(protocol.PhaseImage)
	if err := r.ensureImage(pctx, rt, &spec); err != nil {
		if isClosed(cancelled) {
			r.result.Cancelled = true
			return nil
		}
		return err
	}
	if isClosed(cancelled) {
		r.result.Cancelled = true
		return nil
	}
	return r.runContainer(ctx, rt, &spec, dirs, cancelled)
}

// ensureImage makes sure the spec's image is on the VM, pulling it when the
// spec allows.
func (r *run) ensureImage(ctx context.Context, rt Runtime, spec *protocol.Spec) error {
	ok, err := rt.ImageExists(ctx, spec.Image)
	if err != nil {
		return fmt.Errorf("look up image %q: %w", spec.Image, err)
	}
	if ok {
		return nil
	}
	if !spec.Pull {
		return fmt.Errorf("image %q is not present on the VM and pulling is off: build or load it first, or allow pulling (spec \"pull\": true; coordinator run --pull)", spec.Image)
	}
	auth, err := pullAuth(spec.Image, r.registry)
	if err != nil {
		return err
	}
	if err := rt.Pull(ctx, spec.Image, auth); err != nil {
		return fmt.Errorf("pull image %q: %w", spec.Image, err)
	}
	return nil
}

// startInbox starts reading the host's messages into dir until the result
// is written; a cancel closes cancelled.
func (r *run) startInbox(dir string, cancelled chan struct{}) {
	in := &inbox{dir: dir, store: r.store, keys: r.keys, mb: r.mb, log: r.log, next: 1, access: r.access,
		cancel: once(func() { close(cancelled) })}
	r.inboxWG.Add(1)
	go func() { defer r.inboxWG.Done(); in.poll(r.inboxCtx, r.cfg.InboxPoll) }()
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func checkSpec(s *protocol.Spec, runID string) error {
	var errs []error
	if s.RunID != runID {
		errs = append(errs, fmt.Errorf("spec is for run %q, not %q", s.RunID, runID))
	}
	if strings.TrimSpace(s.Image) == "" {
		errs = append(errs, errors.New("spec has no image"))
	}
	if s.TimeoutMS <= 0 {
		errs = append(errs, fmt.Errorf("spec timeout must be positive, got %d ms", s.TimeoutMS))
	}
	if s.StopGraceMS < 0 {
		errs = append(errs, fmt.Errorf("spec stop grace must not be negative, got %d ms", s.StopGraceMS))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid spec: %w", err)
	}
	return nil
}

type runDirs struct {
	workspace, inbox, outbox, input string
}

// prepareDirs lays out the run's directories and fills the workspace and
// the input file.
func (r *run) prepareDirs(ctx context.Context, spec *protocol.Spec) (*runDirs, error) {
	base := filepath.Join(r.cfg.WorkDir, "runs", r.boot.RunID)
	d := &runDirs{
		workspace: filepath.Join(base, "workspace"),
		inbox:     filepath.Join(base, "inbox"),
		outbox:    filepath.Join(base, "outbox"),
	}
	for _, p := range []string{d.workspace, d.inbox, d.outbox} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return nil, fmt.Errorf("prepare run directory: %w", err)
		}
	}
	// The agent may run as a non-root user: it must be able to write its
	// outbox and workspace.
	_ = os.Chmod(d.outbox, 0o777)
	_ = os.Chmod(d.workspace, 0o777)
	if spec.Workspace {
		r.phases.begin(protocol.PhaseWorkspace)
		b, err := r.store.Get(ctx, r.keys.Workspace())
		if err != nil {
			return nil, fmt.Errorf("download workspace: %w", err)
		}
		if err := extractWorkspace(bytes.NewReader(b), d.workspace); err != nil {
			return nil, fmt.Errorf("unpack workspace: %w", err)
		}
	}
	if len(spec.Input) > 0 {
		d.input = filepath.Join(base, "input.json")
		if err := os.WriteFile(d.input, spec.Input, 0o644); err != nil {
			return nil, fmt.Errorf("write input: %w", err)
		}
	}
	return d, nil
}

// Paths inside the container (the container side of the contract).
const (
	ctrWorkspace = "/workspace"
	ctrInbox     = "/sortie/inbox"
	ctrOutbox    = "/sortie/outbox"
	ctrInput     = "/sortie/input.json"
)

func containerEnv(spec *protocol.Spec, secrets map[string]protocol.Secret, hasInput bool) []string {
	env := make([]string, 0, len(spec.Env)+len(secrets)+5)
	for k, v := range spec.Env {
		env = append(env, k+"="+v)
	}
	for k, v := range secrets {
		if _, dup := spec.Env[k]; !dup {
			env = append(env, k+"="+v.Reveal())
		}
	}
	sort.Strings(env)
	env = append(env,
		"SORTIE_RUN_ID="+spec.RunID,
		"SORTIE_WORKSPACE="+ctrWorkspace,
		"SORTIE_INBOX="+ctrInbox,
		"SORTIE_OUTBOX="+ctrOutbox,
	)
	if hasInput {
		env = append(env, "SORTIE_INPUT="+ctrInput)
	}
	return env
}

// once is a func that runs at most once.
func once(f func()) func() {
	var o sync.Once
	return func() { o.Do(f) }
}
