package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/coordinator"
	"github.com/sortie/sortie/internal/coordinator/local"
	"github.com/sortie/sortie/internal/store"
	"github.com/sortie/sortie/internal/testenv"
	"github.com/sortie/sortie/pkg/protocol"
)

// accessTable compares the store access modes on MinIO: what Start spends
// on the store before it asks for a VM (the presigned mode signs the URL
// book, sts asks STS for credentials), and Start -> container started.
func accessTable(t testing.TB, out io.Writer, image string, runs int) {
	sc := testenv.MinIO(t)
	s3, err := store.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	sup := testenv.SupervisorBinary(t)
	fmt.Fprintf(out, "\n## Store access modes on MinIO (%d runs each; ms, p50 / max)\n\n", runs)
	fmt.Fprintf(out, "| %-12s | %-24s | %-24s | %-24s |\n|%s|%s|%s|%s|\n", "mode", "Start: store writes", "Start -> hello seen", "Start -> container started",
		"--------------", "--------------------------", "--------------------------", "--------------------------")
	for _, mode := range []string{coordinator.AccessPresigned, coordinator.AccessSTS, coordinator.AccessCredentials} {
		prov := &local.Provider{Dir: filepath.Join(t.TempDir(), "vms")}
		cfg := coordinator.Config{
			Store: s3, Provider: prov, SupervisorPath: sup, Access: mode,
			VMAccess: protocol.StoreAccess{
				Mode: protocol.AccessCredentials, Endpoint: sc.Endpoint, Region: sc.Region, Bucket: sc.Bucket,
				PathStyle: true, AccessKeyID: sc.AccessKeyID, SecretAccessKey: sc.SecretAccessKey,
			},
		}
		if mode == coordinator.AccessSTS {
			cfg.STS = &store.STSIssuer{Store: sc}
		}
		c, err := coordinator.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var writes, hello, started []float64
		for range runs {
			t0 := time.Now()
			run, err := c.Start(context.Background(), coordinator.RunSpec{Image: image, Command: []string{"-exit", "0"}, Timeout: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			for ev := range run.Events() {
				if ev.Type != protocol.EventPhase {
					continue
				}
				switch ev.Phase.Name {
				case coordinator.PhaseStoreWrites:
					writes = append(writes, float64(ev.Phase.DurationMS))
				case coordinator.PhaseVMBoot:
					hello = append(hello, float64(ev.Time.Sub(t0).Microseconds())/1000)
				case protocol.PhaseStart:
					started = append(started, float64(ev.Time.Sub(t0).Microseconds())/1000)
				}
			}
			if res, err := run.Wait(context.Background()); err != nil || !res.Succeeded() {
				t.Fatalf("%s run: %v %+v", mode, err, res)
			}
		}
		_ = prov.Shutdown(context.Background())
		cell := func(xs []float64) string { return fmt.Sprintf("%.1f / %.1f", pct(xs, 50), pct(xs, 100)) }
		fmt.Fprintf(out, "| %-12s | %-24s | %-24s | %-24s |\n", mode, cell(writes), cell(hello), cell(started))
	}
}
