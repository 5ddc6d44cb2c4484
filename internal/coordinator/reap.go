package coordinator

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/sortie/sortie/pkg/protocol"
)

// Reasons a VM is reaped.
const (
	ReapExpired = "expired"  // its expires label is past, plus the deadline grace
	ReapDone    = "finished" // its run has a result
	ReapNoHello = "no-hello" // no hello within the boot timeout
)

// VMState is what `coordinator ls` shows of one VM.
type VMState struct {
	VM      *VM
	Expires time.Time
	// Run is "booting", "running", "finished" or "unknown" (the store did
	// not answer), from the store.
	Run string
	// Reap is why the reaper would delete it now ("" to keep it).
	Reap string
}

// ListVMs returns this owner's VMs with their run state. The provider must
// be able to list (a Lister).
func (c *Coordinator) ListVMs(ctx context.Context, now time.Time) ([]VMState, error) {
	lister, ok := c.cfg.Provider.(Lister)
	if !ok {
		return nil, fmt.Errorf("the %s provider cannot list its VMs: they end with the coordinator that started them, and the next coordinator on the same state directory removes what a killed one left (ls and reap are for cloud providers: use --provider hetzner)", c.cfg.Provider.Name())
	}
	vms, err := lister.List(ctx, c.cfg.OwnerID)
	if err != nil {
		return nil, err
	}
	out := make([]VMState, 0, len(vms))
	for _, vm := range vms {
		out = append(out, c.state(ctx, vm, now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VM.Name < out[j].VM.Name })
	return out, nil
}

// state reads the run's progress from the store (two HEADs at most).
func (c *Coordinator) state(ctx context.Context, vm *VM, now time.Time) VMState {
	st := VMState{VM: vm, Run: "booting"}
	if sec, err := strconv.ParseInt(vm.Labels["expires"], 10, 64); err == nil {
		st.Expires = time.Unix(sec, 0)
	}
	keys := protocol.NewRunKeys(c.cfg.Prefix, vm.RunID)
	if vm.RunID != "" {
		// A store that cannot answer says nothing about the run: such a VM
		// is reaped only once it has expired, never as "no hello".
		if ok, err := c.cfg.Store.Exists(ctx, keys.Result()); err != nil {
			st.Run = "unknown"
		} else if ok {
			st.Run = "finished"
		} else if ok, err := c.cfg.Store.Exists(ctx, keys.Hello()); err != nil {
			st.Run = "unknown"
		} else if ok {
			st.Run = "running"
		}
	}
	switch {
	// Past the deadline the supervisor still stops the container and
	// writes the result: the reaper waits the coordinator's grace too.
	case !st.Expires.IsZero() && now.After(st.Expires.Add(c.cfg.DeadlineGrace)):
		st.Reap = ReapExpired
	case st.Run == "finished":
		st.Reap = ReapDone
	case st.Run == "booting" && now.Sub(vm.Created) > c.cfg.BootTimeout:
		st.Reap = ReapNoHello
	}
	return st
}

// Reaped is one VM the reaper deleted, or failed to.
type Reaped struct {
	VMState
	Err error
}

// Reap deletes this owner's VMs that are past their expiry, whose run has a
// result, or that never said hello within the boot timeout. It never
// touches a VM without this coordinator's owner label.
func (c *Coordinator) Reap(ctx context.Context, now time.Time) ([]Reaped, error) {
	states, err := c.ListVMs(ctx, now)
	if err != nil {
		return nil, err
	}
	var out []Reaped
	var errs []error
	for _, st := range states {
		if st.Reap == "" {
			continue
		}
		err := c.cfg.Provider.Delete(ctx, st.VM)
		if err == nil && st.VM.RunID != "" {
			// A bundle left by a VM that never claimed it.
			_ = c.cfg.Store.Delete(ctx, protocol.NewRunKeys(c.cfg.Prefix, st.VM.RunID).Bootstrap())
		}
		c.cfg.Logger.Info("reaped VM", "vm", st.VM.Name, "reason", st.Reap, "err", err)
		out = append(out, Reaped{VMState: st, Err: err})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// ReapEvery reaps now and then every interval until ctx ends: on daemon
// start, a restarted coordinator removes what its predecessor left.
func (c *Coordinator) ReapEvery(ctx context.Context, interval time.Duration) {
	for {
		if _, err := c.Reap(ctx, time.Now()); err != nil && ctx.Err() == nil {
			c.cfg.Logger.Warn("reap", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
