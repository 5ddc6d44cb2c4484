package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/sortie/sortie/internal/coordinator"
	"github.com/sortie/sortie/internal/supervisor"
	"github.com/sortie/sortie/pkg/protocol"
)

// TestContainerDefaults inspects the agent containers that runs create:
// the hardened defaults, and each of them configured per run.
func TestContainerDefaults(t *testing.T) {
	h := newHarness(t)
	dc, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	tests := []struct {
		name  string
		spec  coordinator.RunSpec
		check func(t *testing.T, ci client.ContainerInspectResult)
	}{
		{"defaults", coordinator.RunSpec{}, func(t *testing.T, ci client.ContainerInspectResult) {
			hc := ci.Container.HostConfig
			if len(hc.CapDrop) != 1 || hc.CapDrop[0] != "ALL" || len(hc.CapAdd) != 0 {
				t.Errorf("capabilities: drop %v add %v, want ALL dropped and none kept", hc.CapDrop, hc.CapAdd)
			}
			if len(hc.SecurityOpt) != 1 || hc.SecurityOpt[0] != "no-new-privileges" {
				t.Errorf("security options = %v, want no-new-privileges", hc.SecurityOpt)
			}
			if hc.PidsLimit == nil || *hc.PidsLimit != supervisor.DefaultPidsLimit {
				t.Errorf("pids limit = %v, want the default %d", hc.PidsLimit, supervisor.DefaultPidsLimit)
			}
			if hc.Memory <= 0 {
				t.Errorf("memory limit = %d, want a default below the VM's memory", hc.Memory)
			}
			if hc.NanoCPUs != supervisor.DefaultNanoCPUs() || hc.NanoCPUs <= 0 {
				t.Errorf("CPU limit = %d nano-CPUs, want the default %d (the VM's cores less a quarter)", hc.NanoCPUs, supervisor.DefaultNanoCPUs())
			}
			if hc.ReadonlyRootfs || hc.Privileged || string(hc.NetworkMode) != "bridge" {
				t.Errorf("read-only %v, privileged %v, network %q; want false, false, bridge", hc.ReadonlyRootfs, hc.Privileged, hc.NetworkMode)
			}
			for _, m := range ci.Container.Mounts {
				if m.Source == "/var/run/docker.sock" || m.Source == "/run/docker.sock" {
					t.Error("the Docker socket is mounted into the agent's container")
				}
			}
			if ci.Container.Config.User != "" {
				t.Errorf("user = %q, want the image's own", ci.Container.Config.User)
			}
		}},
		{"configured", coordinator.RunSpec{
			User: "1000:1000", CapAdd: []string{"NET_BIND_SERVICE"}, ReadOnlyRoot: true,
			Limits: protocol.Limits{MemoryBytes: 64 << 20, NanoCPUs: 500_000_000, PidsLimit: 100},
		}, func(t *testing.T, ci client.ContainerInspectResult) {
			hc := ci.Container.HostConfig
			if len(hc.CapAdd) != 1 || hc.CapAdd[0] != "CAP_NET_BIND_SERVICE" {
				t.Errorf("cap add = %v, want CAP_NET_BIND_SERVICE", hc.CapAdd)
			}
			if !hc.ReadonlyRootfs {
				t.Error("root filesystem is writable, want read-only")
			}
			if hc.Memory != 64<<20 || hc.NanoCPUs != 500_000_000 || hc.PidsLimit == nil || *hc.PidsLimit != 100 {
				t.Errorf("limits = memory %d, CPUs %d, pids %v; want 64 MiB, 0.5, 100", hc.Memory, hc.NanoCPUs, hc.PidsLimit)
			}
			if ci.Container.Config.User != "1000:1000" {
				t.Errorf("user = %q, want 1000:1000", ci.Container.Config.User)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			spec := tt.spec
			spec.Image, spec.Command, spec.Timeout, spec.StopGrace = h.image, []string{"-sleep", "forever"}, time.Minute, time.Second
			run, err := h.c.Start(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			inspected := false
			_, res := collect(t, run, func(ev coordinator.Event) {
				if ev.Type == protocol.EventPhase && ev.Phase.Name == protocol.PhaseStart && !inspected {
					inspected = true
					ci, err := dc.ContainerInspect(ctx, "sortie-"+run.ID, client.ContainerInspectOptions{})
					if err != nil {
						t.Errorf("inspect: %v", err)
					} else {
						tt.check(t, ci)
					}
					if err := run.Cancel(ctx); err != nil {
						t.Error(err)
					}
				}
			})
			if !inspected || !res.Cancelled {
				t.Errorf("inspected %v, result %+v; want the container inspected, then cancelled", inspected, res)
			}
		})
	}
}
