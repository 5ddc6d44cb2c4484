package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/coordinator"
	"github.com/sortie/sortie/internal/coordinator/hetzner"
	"github.com/sortie/sortie/internal/coordinator/local"
	"github.com/sortie/sortie/internal/hcloudfake"
	"github.com/sortie/sortie/internal/store"
	"github.com/sortie/sortie/internal/testenv"
	"github.com/sortie/sortie/pkg/protocol"
)

// createClock records when the first create request leaves for each run.
type createClock struct {
	base http.RoundTripper
	mu   sync.Mutex
	at   []time.Time
}

func (c *createClock) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && filepath.Base(r.URL.Path) == "servers" {
		c.mu.Lock()
		c.at = append(c.at, time.Now())
		c.mu.Unlock()
	}
	return c.base.RoundTrip(r)
}

// hetznerTable runs n concurrent runs through the hetzner provider against
// the fake API (3600 requests per hour, spec-validated), each server booting
// a local VM, and reports API requests per run and the coordinator's time
// from Start to the create request.
func hetznerTable(t testing.TB, out io.Writer, n int) {
	testenv.Docker(t)
	image := testenv.TestAgentImage(t)
	dir := t.TempDir()
	fake := hcloudfake.New(hcloudfake.WithToken("bench"), hcloudfake.WithSpecValidation(t, ""),
		hcloudfake.WithBootHook(func(ctx context.Context, s hcloudfake.BootedServer) (func(), error) {
			m, err := local.Boot(ctx, filepath.Join(dir, "vms", s.Name), []byte(s.UserData), local.BootOptions{})
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench: boot %s: %v\n", s.Name, err)
				return nil, err
			}
			go func() {
				<-m.Exited()
				if b, err := os.ReadFile(filepath.Join(m.Dir, "supervisor.log")); err == nil && strings.Contains(string(b), "ERROR") {
					fmt.Fprintf(os.Stderr, "bench: supervisor %s:\n%s\n", s.Name, b)
				}
			}()
			return func() { _ = m.Destroy(context.Background()) }, nil
		}))
	fake.Start()
	defer fake.Close()
	emb, err := store.StartEmbedded(context.Background(), filepath.Join(dir, "s3"), "")
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	sc := emb.Config()
	s3, err := store.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	clock := &createClock{base: http.DefaultTransport}
	prov, err := hetzner.New(hetzner.Config{Token: "bench", Endpoint: fake.URL(), HTTPClient: &http.Client{Transport: clock}})
	if err != nil {
		t.Fatal(err)
	}
	sup := testenv.SupervisorBinary(t)
	c, err := coordinator.New(coordinator.Config{
		Store: s3, Provider: prov, SupervisorPath: sup, OwnerID: "bench",
		VMAccess: protocol.StoreAccess{Mode: protocol.AccessCredentials, Endpoint: sc.Endpoint, Region: sc.Region,
			Bucket: sc.Bucket, PathStyle: true, AccessKeyID: sc.AccessKeyID, SecretAccessKey: sc.SecretAccessKey},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := prov.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	measure := func(runs int) (reqs, toCreate []float64, failed int) {
		clock.mu.Lock()
		clock.at = nil
		clock.mu.Unlock()
		var wg sync.WaitGroup
		var mu sync.Mutex
		starts := make([]time.Time, runs)
		for i := range runs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				starts[i] = time.Now()
				run, err := c.Start(context.Background(), coordinator.RunSpec{Image: image, Command: []string{"-exit", "0"}, Timeout: 5 * time.Minute})
				if err != nil {
					t.Error(err)
					return
				}
				for range run.Events() {
				}
				res, err := run.Wait(context.Background())
				mu.Lock()
				defer mu.Unlock()
				if err != nil || !res.Succeeded() {
					failed++
					fmt.Fprintf(os.Stderr, "bench: run %s failed: %v %+v\n", run.ID, err, res)
					return
				}
				reqs = append(reqs, float64(prov.RequestsFor(run.ID)))
			}()
		}
		wg.Wait()
		// Start -> create: pair the i-th start with the i-th create sent,
		// both in time order (runs start together; the spread is the
		// coordinator's own work, store writes and render).
		clock.mu.Lock()
		defer clock.mu.Unlock()
		slices.SortFunc(starts, time.Time.Compare)
		for i := range min(len(starts), len(clock.at)) {
			toCreate = append(toCreate, float64(clock.at[i].Sub(starts[i]).Microseconds())/1000)
		}
		return reqs, toCreate, failed
	}
	fmt.Fprintf(out, "\n## Hetzner provider against the fake API (3600 requests/hour budget)\n\n")
	fmt.Fprintf(out, "| runs at once | succeeded | API requests/run p50 | max | Start -> create request p50 (ms) | max (ms) |\n|---|---|---|---|---|---|\n")
	for _, runs := range []int{1, n} {
		reqs, tc, failed := measure(runs)
		fmt.Fprintf(out, "| %d | %d | %.0f | %.0f | %.1f | %.1f |\n", runs, runs-failed, pct(reqs, 50), pct(reqs, 100), pct(tc, 50), pct(tc, 100))
	}
}
