package hcloudfake_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/sortie/sortie/internal/hcloudfake"
)

// vms is a BootHook that records what it boots and stops.
type vms struct {
	mu      sync.Mutex
	booted  []hcloudfake.BootedServer
	stopped []string
	release chan struct{} // if set, boots wait for it
	err     error
}

func (v *vms) boot(ctx context.Context, s hcloudfake.BootedServer) (func(), error) {
	if v.release != nil {
		select {
		case <-v.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.err != nil {
		return nil, v.err
	}
	v.booted = append(v.booted, s)
	return func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		v.stopped = append(v.stopped, s.Name)
	}, nil
}

func (v *vms) state() (booted []hcloudfake.BootedServer, stopped []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append(booted, v.booted...), append(stopped, v.stopped...)
}

func TestBootHook(t *testing.T) {
	hook := &vms{}
	_, c := start(t, hcloudfake.WithBootHook(hook.boot))
	ctx := ctxT(t)
	opts := createOpts("vm-1")
	srv := mustCreate(t, c, opts)

	booted, stopped := hook.state()
	want := []hcloudfake.BootedServer{{
		ID: srv.ID, Name: "vm-1", Labels: opts.Labels, UserData: opts.UserData,
		ServerType: "cx23", Location: "fsn1", Image: "debian-12", PublicIPv4: srv.PublicNet.IPv4.IP.String(),
	}}
	if diff := cmp.Diff(want, booted); diff != "" {
		t.Errorf("booted (-want +got):\n%s", diff)
	}
	if len(stopped) != 0 {
		t.Errorf("stopped before delete: %v", stopped)
	}

	res, _, err := c.Server.DeleteWithResult(ctx, srv)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Action.WaitFor(ctx, res.Action); err != nil {
		t.Fatal(err)
	}
	if _, stopped := hook.state(); !cmp.Equal(stopped, []string{"vm-1"}) {
		t.Errorf("stopped after the delete action: got %v, want [vm-1]", stopped)
	}
}

func TestBootHookGatesActions(t *testing.T) {
	hook := &vms{release: make(chan struct{})}
	f, c := start(t, hcloudfake.WithBootHook(hook.boot))
	ctx := ctxT(t)
	res, _, err := c.Server.Create(ctx, createOpts("slow-boot"))
	if err != nil {
		t.Fatal(err)
	}
	a, _, _ := c.Action.GetByID(ctx, res.Action.ID)
	if a.Status != hcloud.ActionStatusRunning {
		t.Errorf("create action while booting: got %q, want running", a.Status)
	}
	// Deleting while the boot is still under way stops the VM once it is up.
	del, _, err := c.Server.DeleteWithResult(ctx, res.Server)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Servers(); len(got) != 1 || got[0].Status != "deleting" {
		t.Errorf("Servers() while the delete runs: %+v", got)
	}
	close(hook.release)
	if err := c.Action.WaitFor(ctx, del.Action); err != nil {
		t.Fatal(err)
	}
	if _, stopped := hook.state(); !cmp.Equal(stopped, []string{"slow-boot"}) {
		t.Errorf("stopped: got %v", stopped)
	}
	if got := f.Servers(); len(got) != 0 {
		t.Errorf("Servers() after the delete: %+v", got)
	}
}

func TestBootHookError(t *testing.T) {
	hook := &vms{err: errors.New("no KVM")}
	_, c := start(t, hcloudfake.WithBootHook(hook.boot))
	ctx := ctxT(t)
	res, _, err := c.Server.Create(ctx, createOpts("broken"))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Action.WaitFor(ctx, res.Action)
	var actionErr hcloud.ActionError
	if !errors.As(err, &actionErr) {
		t.Fatalf("wait: got %v, want the boot error as an ActionError", err)
	}
}

func TestCloseStopsBootedServers(t *testing.T) {
	hook := &vms{}
	f, c := start(t, hcloudfake.WithBootHook(hook.boot))
	mustCreate(t, c, createOpts("left-1"))
	mustCreate(t, c, createOpts("left-2"))
	f.Close()
	_, stopped := hook.state()
	if len(stopped) != 2 {
		t.Errorf("stopped at Close: got %v, want both servers", stopped)
	}
	f.Close() // idempotent
}
