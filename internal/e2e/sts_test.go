package e2e

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/coordinator"
	"github.com/sortie/sortie/internal/coordinator/local"
	"github.com/sortie/sortie/internal/store"
	"github.com/sortie/sortie/pkg/protocol"
)

// TestSTSRenewalsAndScope: in the sts mode the VM gets temporary
// credentials from MinIO's STS, narrowed by a session policy to its run's
// prefix and a 6-second window. A run three windows long lives on the
// renewals sent through the inbox and delivers everything. The credentials
// reach no other run's keys, and within one window after the run they reach
// nothing at all.
func TestSTSRenewalsAndScope(t *testing.T) {
	const ttl = 6 * time.Second
	keep := t.TempDir()
	var host protocol.StoreAccess
	h := newHarness(t, func(c *coordinator.Config, p *local.Provider) {
		p.KeepLogs = keep
		c.Access = coordinator.AccessSTS
		c.STS = &store.STSIssuer{Store: store.FromAccess(c.VMAccess)}
		c.AccessTTL = ttl
		host = c.VMAccess
	})
	ctx := context.Background()
	// Another run's objects, which this run's credentials must not reach.
	otherKeys := protocol.NewRunKeys("e2e", "01otherrun00000000000000000")
	if err := h.store.Put(ctx, otherKeys.Spec(), bytes.NewReader([]byte(`{"v":1}`))); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	run, err := h.c.Start(ctx, coordinator.RunSpec{
		Image:   h.image,
		Command: []string{"-log-bytes", "4096", "-outbox-timed", "36:500ms", "-exit", "0"},
		Timeout: 2 * time.Minute, OutboxDir: out,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(keep, coordinator.VMName(run.ID)+".log"))
			t.Logf("supervisor log:\n%s", b)
		}
	})
	_, res := collect(t, run, nil)
	if !res.Succeeded() || len(res.Outbox) != 36 {
		t.Fatalf("result = %+v, want success with 36 outbox files", res)
	}
	keys := protocol.NewRunKeys("e2e", run.ID)
	var renewals []*protocol.SessionCredentials
	for _, m := range h.refills(t, run.ID) {
		if m.Credentials != nil {
			renewals = append(renewals, m.Credentials)
		}
	}
	if len(renewals) < 2 {
		t.Fatalf("%d renewals, want several: the run lasted three credential windows", len(renewals))
	}
	last := renewals[len(renewals)-1]
	if last.AccessKeyID == host.AccessKeyID {
		t.Fatal("the VM was given the host's own access key")
	}
	vmAccess := host
	vmAccess.AccessKeyID, vmAccess.SecretAccessKey, vmAccess.SessionToken = last.AccessKeyID, last.SecretAccessKey, last.SessionToken
	vm, err := store.New(store.FromAccess(vmAccess))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vm.Get(ctx, keys.Result()); err != nil && time.Now().Before(last.Expires) {
		t.Errorf("read own result with the VM's credentials: %v", err)
	}
	if _, err := vm.Get(ctx, otherKeys.Spec()); !isDenied(err) {
		t.Errorf("read another run's spec with the VM's credentials: err = %v, want AccessDenied", err)
	}
	if err := vm.Put(ctx, otherKeys.Result(), bytes.NewReader([]byte(`{"v":1}`))); !isDenied(err) {
		t.Errorf("write another run's result with the VM's credentials: err = %v, want AccessDenied", err)
	}
	// Nothing is renewed after the run: within one window access ends.
	time.Sleep(time.Until(last.Expires) + time.Second)
	if _, err := vm.Get(ctx, keys.Result()); !isDenied(err) {
		t.Errorf("read own result one window after the run: err = %v, want AccessDenied", err)
	}
	if err := vm.Put(ctx, keys.Status(), bytes.NewReader([]byte(`{"v":1}`))); !isDenied(err) {
		t.Errorf("write own status one window after the run: err = %v, want AccessDenied", err)
	}
}

func isDenied(err error) bool {
	return err != nil && strings.Contains(err.Error(), "AccessDenied")
}

// TestSTSRenewedDuringPull: the supervisor reads renewals from the start of
// the image step, so access that expires during a long pull (here a
// registry on loopback that holds every connection for 10 s and then drops
// it) is renewed, and the pull's failure still reaches the host as a
// result, written with renewed credentials.
func TestSTSRenewedDuringPull(t *testing.T) {
	const ttl = 6 * time.Second
	h := newHarness(t, func(c *coordinator.Config, _ *local.Provider) {
		c.Access = coordinator.AccessSTS
		c.STS = &store.STSIssuer{Store: store.FromAccess(c.VMAccess)}
		c.AccessTTL = ttl
	})
	slow := stallingServer(t, 10*time.Second)
	run, err := h.c.Start(context.Background(), coordinator.RunSpec{
		Image: slow + "/sortie/never:1", Pull: true, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	_, res := collect(t, run, nil)
	if !strings.Contains(res.Error, "pull image") {
		t.Fatalf("result = %+v, want the pull's failure", res)
	}
	if took := time.Since(started); took < 2*ttl {
		t.Fatalf("the pull failed after %s, before the first credentials expired: the test proves nothing", took)
	}
	if n := len(h.refills(t, run.ID)); n < 2 {
		t.Errorf("%d renewals during a pull of several windows, want at least 2", n)
	}
}

// stallingServer accepts connections on loopback, holds each for hold
// without a byte, then drops it. It returns its host:port.
func stallingServer(t *testing.T, hold time.Duration) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			time.AfterFunc(hold, func() { c.Close() })
		}
	}()
	return ln.Addr().String()
}
