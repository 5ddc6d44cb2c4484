package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/sortie/sortie/internal/coordinator"
	"github.com/sortie/sortie/internal/coordinator/local"
	"github.com/sortie/sortie/internal/store"
	"github.com/sortie/sortie/internal/testenv"
	"github.com/sortie/sortie/pkg/protocol"
)

// BenchmarkTable measures runs on the embedded default and prints the
// table `make bench` shows (go test -bench Table -benchtime 1x). Timing
// claims live here, never in tests.
func BenchmarkTable(b *testing.B) {
	for range b.N {
		table(b)
	}
}

func table(t testing.TB) {
	e := setup(t)
	out := os.Stdout
	runs := envInt("SORTIE_BENCH_RUNS", 5)

	fmt.Fprintf(out, "\nSortie benchmark (%s, embedded S3, local provider, Docker %s)\n", time.Now().UTC().Format(time.RFC3339), e.dockerVersion)

	// 1. Start -> container start, by phase, against a bare docker run.
	phases := map[string][]float64{}
	var order []string
	var totals, docker []float64
	for i := 0; i < runs; i++ {
		ph, total := e.startToContainer(t)
		for _, p := range ph {
			if _, ok := phases[p.name]; !ok {
				order = append(order, p.name)
			}
			phases[p.name] = append(phases[p.name], p.ms)
		}
		totals = append(totals, total)
		docker = append(docker, e.bareDockerRun(t))
	}
	fmt.Fprintf(out, "\n## Start to container start (%d runs; ms)\n\n", runs)
	fmt.Fprintf(out, "| %-42s | %8s | %8s |\n|%s|%s|%s|\n", "phase", "p50", "max", strings.Repeat("-", 44), strings.Repeat("-", 10), strings.Repeat("-", 10))
	for _, name := range order {
		fmt.Fprintf(out, "| %-42s | %8.1f | %8.1f |\n", name, pct(phases[name], 50), pct(phases[name], 100))
	}
	fmt.Fprintf(out, "| %-42s | %8.1f | %8.1f |\n", "**total: Start -> container started**", pct(totals, 50), pct(totals, 100))
	fmt.Fprintf(out, "| %-42s | %8.1f | %8.1f |\n", "bare docker run (create + start, same image)", pct(docker, 50), pct(docker, 100))
	fmt.Fprintf(out, "| %-42s | %8.2f | %8s |\n", "ratio sortie / docker run (p50)", pct(totals, 50)/pct(docker, 50), "")

	// 2. Outbox latency.
	lat := e.outboxLatency(t, 100)
	fmt.Fprintf(out, "\n## Outbox file closed -> saved by the coordinator (%d files; ms)\n\n", len(lat))
	fmt.Fprintf(out, "| p50 | p95 | max |\n|---|---|---|\n| %.1f | %.1f | %.1f |\n", pct(lat, 50), pct(lat, 95), pct(lat, 100))

	// 3. Idle request rates, supervisor memory, binary size.
	idle := e.idle(t, 30*time.Second)
	fmt.Fprintf(out, "\n## Idle agent (%s window)\n\n", idle.window)
	fmt.Fprintf(out, "| what | value |\n|---|---|\n")
	fmt.Fprintf(out, "| store requests/min, coordinator | %.1f |\n", idle.hostPerMin)
	fmt.Fprintf(out, "| store requests/min, supervisor | %.1f |\n", idle.vmPerMin)
	fmt.Fprintf(out, "| supervisor RSS (now / peak) | %s / %s |\n", idle.rss, idle.hwm)
	fmt.Fprintf(out, "| vm-supervisor binary (static, stripped) | %.1f MiB |\n", float64(e.supSize)/(1<<20))

	// 4. Store access modes on MinIO.
	accessTable(t, out, e.image, runs)

	// 5. The Hetzner provider on the fake API.
	hetznerTable(t, out, envInt("SORTIE_BENCH_CONCURRENT", 50))
	fmt.Fprintln(out)
}

type env struct {
	c             *coordinator.Coordinator
	prov          *local.Provider
	hostReqs      *atomic.Int64
	vmReqs        *atomic.Int64
	image         string
	supSize       int64
	dc            *client.Client
	dockerVersion string
}

// countingStore counts the coordinator's store requests; it presigns the
// VMs' URLs for the counting proxy, so their requests are counted too.
type countingStore struct {
	coordinator.Store
	n        *atomic.Int64
	viaProxy *store.S3
}

func (c countingStore) PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error) {
	return c.viaProxy.PresignGet(ctx, key, ttl)
}

func (c countingStore) PresignPut(ctx context.Context, key string, ttl time.Duration) (string, error) {
	return c.viaProxy.PresignPut(ctx, key, ttl)
}

func (c countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	c.n.Add(1)
	return c.Store.Get(ctx, key)
}

func (c countingStore) Put(ctx context.Context, key string, body io.ReadSeeker) error {
	c.n.Add(1)
	return c.Store.Put(ctx, key, body)
}

func (c countingStore) Delete(ctx context.Context, key string) error {
	c.n.Add(1)
	return c.Store.Delete(ctx, key)
}

func (c countingStore) Exists(ctx context.Context, key string) (bool, error) {
	c.n.Add(1)
	return c.Store.Exists(ctx, key)
}

func setup(t testing.TB) *env {
	testenv.Docker(t)
	dir := t.TempDir()
	emb, err := store.StartEmbedded(context.Background(), filepath.Join(dir, "s3"), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emb.Close() })
	sc := emb.Config()
	s3, err := store.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	// The VMs reach the store through a counting proxy, so the supervisor's
	// requests are counted on the wire.
	var vmReqs, hostReqs atomic.Int64
	target, _ := url.Parse(sc.Endpoint)
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vmReqs.Add(1)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)

	bin := testenv.BuildStaticBinary(t, "github.com/sortie/sortie/cmd/vm-supervisor")
	sup := filepath.Join(dir, "vm-supervisor")
	if err := os.WriteFile(sup, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	prov := &local.Provider{Dir: filepath.Join(dir, "vms")}
	t.Cleanup(func() { _ = prov.Shutdown(context.Background()) })
	pc := sc
	pc.Endpoint = proxy.URL
	viaProxy, err := store.New(pc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := coordinator.New(coordinator.Config{
		Store: countingStore{Store: s3, n: &hostReqs, viaProxy: viaProxy}, Provider: prov, SupervisorPath: sup,
		VMAccess: protocol.StoreAccess{
			Mode: protocol.AccessCredentials, Endpoint: proxy.URL, Region: sc.Region, Bucket: sc.Bucket,
			PathStyle: true, AccessKeyID: sc.AccessKeyID, SecretAccessKey: sc.SecretAccessKey,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	dc, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dc.Close() })
	v, err := dc.ServerVersion(context.Background(), client.ServerVersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &env{c: c, prov: prov, hostReqs: &hostReqs, vmReqs: &vmReqs, image: testenv.TestAgentImage(t),
		supSize: int64(len(bin)), dc: dc, dockerVersion: v.Version}
}

type phase struct {
	name string
	ms   float64
}

// startToContainer runs an agent that exits at once and returns the phases
// up to the container's start, and the total from Start to started.
func (e *env) startToContainer(t testing.TB) ([]phase, float64) {
	t0 := time.Now()
	run, err := e.c.Start(context.Background(), coordinator.RunSpec{Image: e.image, Command: []string{"-exit", "0"}, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{
		coordinator.PhaseStoreWrites: "coordinator: store writes",
		coordinator.PhaseRender:      "coordinator: user-data render",
		coordinator.PhaseVMCreate:    "VM boot: supervisor download, check, start",
		coordinator.PhaseVMBoot:      "VM boot -> hello seen by coordinator",
		protocol.PhaseBootstrap:      "supervisor: start -> bundle opened, hello",
		protocol.PhaseSpec:           "supervisor: read spec",
		protocol.PhaseImage:          "supervisor: image present",
		protocol.PhaseCreate:         "container create",
		protocol.PhaseStart:          "container start",
	}
	var out []phase
	var total float64
	for ev := range run.Events() {
		if ev.Type != protocol.EventPhase {
			continue
		}
		if n, ok := names[ev.Phase.Name]; ok {
			out = append(out, phase{n, float64(ev.Phase.DurationMS)})
		}
		if ev.Phase.Name == protocol.PhaseStart {
			total = float64(ev.Time.Sub(t0).Microseconds()) / 1000
		}
	}
	if res, err := run.Wait(context.Background()); err != nil || !res.Succeeded() {
		t.Fatalf("run: %v %+v", err, res)
	}
	return out, total
}

// bareDockerRun times create + start of the same image through the Engine API.
func (e *env) bareDockerRun(t testing.TB) float64 {
	ctx := context.Background()
	t0 := time.Now()
	cr, err := e.dc.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: e.image, Cmd: []string{"-exit", "0"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.dc.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	ms := float64(time.Since(t0).Microseconds()) / 1000
	_, _ = e.dc.ContainerRemove(ctx, cr.ID, client.ContainerRemoveOptions{Force: true})
	return ms
}

// outboxLatency runs an agent that closes n outbox files 30 ms apart, each
// holding its close time, and returns close -> saved latencies.
func (e *env) outboxLatency(t testing.TB, n int) []float64 {
	outDir := t.TempDir()
	run, err := e.c.Start(context.Background(), coordinator.RunSpec{
		Image: e.image, Command: []string{"-outbox-timed", fmt.Sprintf("%d:30ms", n)}, Timeout: 5 * time.Minute, OutboxDir: outDir,
	})
	if err != nil {
		t.Fatal(err)
	}
	var lat []float64
	for ev := range run.Events() {
		if ev.Type != protocol.EventOutbox || ev.SavedPath == "" {
			continue
		}
		now := time.Now()
		b, err := os.ReadFile(ev.SavedPath)
		if err != nil {
			t.Fatal(err)
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		lat = append(lat, float64(now.Sub(time.Unix(0, ns)).Microseconds())/1000)
	}
	res, err := run.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Succeeded() || len(lat) != n {
		t.Errorf("outbox run: %d of %d files saved, result %+v", len(lat), n, res)
	}
	return lat
}

type idleStats struct {
	window               time.Duration
	hostPerMin, vmPerMin float64
	rss, hwm             string
}

// idle runs an agent that sleeps and counts both sides' store requests
// over window, once the container runs.
func (e *env) idle(t testing.TB, window time.Duration) idleStats {
	ctx := context.Background()
	run, err := e.c.Start(ctx, coordinator.RunSpec{Image: e.image, Command: []string{"-sleep", (window + 20*time.Second).String()}, Timeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var st idleStats
	st.window = window
	for ev := range run.Events() {
		if ev.Type == protocol.EventPhase && ev.Phase.Name == protocol.PhaseStart {
			time.Sleep(5 * time.Second) // let the start's burst settle
			h0, v0 := e.hostReqs.Load(), e.vmReqs.Load()
			time.Sleep(window)
			h1, v1 := e.hostReqs.Load(), e.vmReqs.Load()
			st.hostPerMin = float64(h1-h0) / window.Minutes()
			st.vmPerMin = float64(v1-v0) / window.Minutes()
			st.rss, st.hwm = procMem(e.prov.PID(coordinator.VMName(run.ID)))
		}
	}
	if _, err := run.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

func procMem(pid int) (rss, hwm string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?", "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		v := fmt.Sprintf("%.1f MiB", kb/1024)
		switch f[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			hwm = v
		}
	}
	return rss, hwm
}

func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
