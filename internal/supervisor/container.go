package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sortie/sortie/pkg/protocol"
)

// Default limits, for a spec that sets none: the agent never takes the
// whole VM, so the supervisor and Docker keep room to stop it and report.
const (
	DefaultPidsLimit = 4096
	memoryReserve    = 512 << 20 // left to the supervisor, Docker and the OS
	minDefaultMemory = 256 << 20
	cpuReserve       = 250_000_000 // a quarter core left to the supervisor and Docker
)

// DefaultNanoCPUs is the CPU limit of a spec that sets none: the VM's cores
// less a quarter core, so a busy agent never starves the supervisor's
// heartbeats and uploads.
func DefaultNanoCPUs() int64 {
	return int64(runtime.NumCPU())*1_000_000_000 - cpuReserve
}

// withDefaultLimits fills the limits a spec leaves at zero: pids 4096,
// memory = the VM's memory less 512 MiB, CPU = the VM's cores less a
// quarter core.
func withDefaultLimits(l protocol.Limits) protocol.Limits {
	if l.NanoCPUs == 0 {
		l.NanoCPUs = DefaultNanoCPUs()
	}
	if l.PidsLimit == 0 {
		l.PidsLimit = DefaultPidsLimit
	}
	if l.MemoryBytes == 0 {
		if total := memTotal(); total > 0 {
			l.MemoryBytes = max(total-memoryReserve, minDefaultMemory)
		}
	}
	return l
}

// memTotal is the machine's memory in bytes, from /proc/meminfo (0 if unknown).
func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// containerName is the agent container's name: one per run.
func containerName(runID string) string { return "sortie-" + strings.ToLower(runID) }

// deadlineGrace is the stop grace when the VM deadline, not the container
// timeout, ends the run: the VM must go soon.
const deadlineGrace = 5 * time.Second

// runContainer creates, starts and watches the agent container until it
// exits, times out, is cancelled or the VM deadline passes; then drains logs
// and outbox and removes the container.
func (r *run) runContainer(ctx context.Context, rt Runtime, spec *protocol.Spec, d *runDirs, cancelled <-chan struct{}) error {
	final := context.WithoutCancel(ctx)
	mounts := []Mount{
		{Source: d.workspace, Target: ctrWorkspace},
		{Source: d.inbox, Target: ctrInbox, ReadOnly: true},
		{Source: d.outbox, Target: ctrOutbox},
	}
	if d.input != "" {
		mounts = append(mounts, Mount{Source: d.input, Target: ctrInput, ReadOnly: true})
	}
	workdir := spec.WorkDir
	if workdir == "" {
		workdir = ctrWorkspace
	}
	r.phases.begin(protocol.PhaseCreate)
	id, err := rt.Create(ctx, ContainerConfig{
		Name:       containerName(spec.RunID),
		Image:      spec.Image,
		Entrypoint: spec.Entrypoint,
		Cmd:        spec.Command,
		Env:        containerEnv(spec, r.secrets, d.input != ""),
		WorkDir:    workdir,
		Mounts:     mounts,
		Limits:     withDefaultLimits(spec.Limits),
		User:       spec.User,
		CapAdd:     spec.CapAdd,

		ReadOnlyRootfs: spec.ReadOnlyRoot,
		Labels:         map[string]string{runLabel: spec.RunID},
	})
	if err != nil {
		return fmt.Errorf("create container: %w", err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(final, 30*time.Second)
		defer cancel()
		if err := rt.Remove(rctx, id); err != nil {
			r.log.Warn("remove container", "err", err)
		}
	}()

	stdout := newLogStream(r.mb, protocol.StreamStdout, r.cfg.LogChunk)
	stderr := newLogStream(r.mb, protocol.StreamStderr, r.cfg.LogChunk)
	// Attach before start so no output is missed; it must survive the
	// deadline so the last lines are read.
	attachCtx, stopAttach := context.WithCancel(final)
	defer stopAttach()
	attached, err := rt.Attach(attachCtx, id, stdout, stderr)
	if err != nil {
		return fmt.Errorf("attach to container: %w", err)
	}

	ob, err := newOutbox(d.outbox, r.store, r.keys, r.mb, r.log)
	if err != nil {
		return err
	}
	ob.book = r.book
	defer ob.close()

	// Loops that live while the container runs.
	loopCtx, stopLoops := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, f := range []func(){
		func() { ob.watch(loopCtx, r.cfg.OutboxRescan) },
		func() { flushEvery(loopCtx, r.cfg.LogFlush, stdout, stderr) },
	} {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	defer func() { stopLoops(); wg.Wait() }()

	r.phases.begin(protocol.PhaseStart)
	if err := rt.Start(ctx, id); err != nil {
		return fmt.Errorf("start container: %w", err)
	}
	r.phases.begin(protocol.PhaseRunning)

	type waited struct {
		st  ExitStatus
		err error
	}
	waitCh := make(chan waited, 1)
	go func() {
		st, err := rt.Wait(final, id)
		waitCh <- waited{st, err}
	}()
	timeout := time.NewTimer(spec.Timeout())
	defer timeout.Stop()

	var w waited
	// The grace never runs past the VM deadline: the deadline wins.
	graceBefore := func(grace time.Duration) time.Duration {
		return max(0, min(grace, time.Until(r.boot.Deadline)))
	}
	stop := func(grace time.Duration) {
		sctx, cancel := context.WithTimeout(final, grace+30*time.Second)
		defer cancel()
		if err := rt.Stop(sctx, id, grace); err != nil {
			r.log.Warn("stop container", "err", err)
		}
		w = <-waitCh
	}
	select {
	case w = <-waitCh:
	case <-timeout.C:
		r.result.TimedOut = true
		r.log.Info("container timeout; stopping", "timeout", spec.Timeout())
		stop(graceBefore(spec.StopGrace()))
	case <-cancelled:
		r.result.Cancelled = true
		r.log.Info("cancelled; stopping")
		stop(graceBefore(spec.StopGrace()))
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			r.log.Info("VM deadline; stopping")
		} else {
			r.log.Info("supervisor stopping (signal); stopping the container")
		}
		stop(min(spec.StopGrace(), deadlineGrace))
	}
	if w.err != nil {
		return fmt.Errorf("wait for container: %w", w.err)
	}
	r.result.ExitCode = w.st.Code
	r.result.OOMKilled = w.st.OOMKilled

	r.phases.begin(protocol.PhaseFlush)
	// The attach stream ends at the container's exit; bound the wait.
	select {
	case <-attached:
	case <-time.After(10 * time.Second):
		r.log.Warn("log stream did not end after exit; closing it")
		stopAttach()
	}
	stdout.flush()
	stderr.flush()
	stopLoops()
	wg.Wait()
	fctx, cancel := context.WithTimeout(final, finalTimeout)
	defer cancel()
	for {
		err := ob.scan(fctx, 0)
		if err == nil {
			break
		}
		if !errors.Is(err, errNoURL) || fctx.Err() != nil {
			return fmt.Errorf("upload outbox: %w", err)
		}
		// Presigned mode, blob URLs spent: the status tells the host where
		// to sign from; the inbox poller applies the refill.
		_ = r.mb.flush(fctx)
		_ = r.mb.writeStatus(fctx)
		select {
		case <-r.book.refilled:
		case <-time.After(500 * time.Millisecond):
		}
	}
	r.result.Outbox = ob.list()
	switch {
	case r.result.TimedOut:
		return fmt.Errorf("the container ran past its timeout of %s and was stopped", spec.Timeout())
	case r.result.OOMKilled:
		return fmt.Errorf("the container ran out of memory (limit %d bytes) and was killed", spec.Limits.MemoryBytes)
	}
	return nil
}
