package e2e

import (
	"context"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
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

const fakeToken = "test-token-not-a-secret"

type hzHarness struct {
	fake  *hcloudfake.Server
	prov  *hetzner.Provider
	c     *coordinator.Coordinator
	store *store.S3
	image string
	cfg   coordinator.Config
}

// newHetznerHarness wires a coordinator with the hetzner provider on the
// real hcloud-go client to the fake Hetzner API (every request and answer
// checked against the official OpenAPI spec). With boot set, each created
// server boots a local VM from its user-data, like the local provider.
func newHetznerHarness(t *testing.T, boot bool, hc hetzner.Config, opts ...hcloudfake.Option) *hzHarness {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: needs Docker and MinIO")
	}
	h := &hzHarness{}
	opts = append([]hcloudfake.Option{hcloudfake.WithToken(fakeToken), hcloudfake.WithSpecValidation(t, "")}, opts...)
	dir := t.TempDir()
	if boot {
		testenv.Docker(t)
		h.image = testenv.TestAgentImage(t)
		var mu sync.Mutex
		opts = append(opts, hcloudfake.WithBootHook(func(ctx context.Context, s hcloudfake.BootedServer) (func(), error) {
			m, err := local.Boot(ctx, filepath.Join(dir, "vms", s.Name), []byte(s.UserData), local.BootOptions{})
			if err != nil {
				return nil, err
			}
			return func() {
				mu.Lock()
				defer mu.Unlock()
				if err := m.Destroy(context.Background()); err != nil {
					t.Errorf("destroy VM %s: %v", s.Name, err)
				}
			}, nil
		}))
	}
	h.fake = hcloudfake.New(opts...)
	h.fake.Start()
	t.Cleanup(h.fake.Close)
	sc := testenv.MinIO(t)
	s3, err := store.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	h.store = s3
	hc.Token, hc.Endpoint = fakeToken, h.fake.URL()
	if hc.RetryDelay == 0 {
		hc.RetryDelay = 10 * time.Millisecond
	}
	h.prov, err = hetzner.New(hc)
	if err != nil {
		t.Fatal(err)
	}
	sup := testenv.SupervisorBinary(t)
	h.cfg = coordinator.Config{
		Store: s3, Provider: h.prov, SupervisorPath: sup, OwnerID: "test-owner",
		VMAccess: protocol.StoreAccess{
			Mode: protocol.AccessCredentials, Endpoint: sc.Endpoint, Region: sc.Region, Bucket: sc.Bucket,
			PathStyle: sc.PathStyle, AccessKeyID: sc.AccessKeyID, SecretAccessKey: sc.SecretAccessKey,
		},
		BootTimeout: time.Minute, PollMin: 50 * time.Millisecond, PollMax: 500 * time.Millisecond,
	}
	h.c, err = coordinator.New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The project SSH key is looked up (and created) once, not per run.
	if err := h.prov.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *hzHarness) assertNoServers(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var live []string
		for _, s := range h.fake.Servers() {
			if s.Status != "deleting" {
				live = append(live, s.Name)
			}
		}
		if len(live) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("servers left: %v", live)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHetznerRunEndToEnd: whole runs, three at once, through hcloud-go,
// the fake API, the cloud-init user-data, the supervisor and Docker, each
// for exactly two API requests: the create and the delete.
func TestHetznerRunEndToEnd(t *testing.T) {
	h := newHetznerHarness(t, true, hetzner.Config{})
	h.fake.ResetCounters()
	const n = 3
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run, err := h.c.Start(context.Background(), coordinator.RunSpec{
				Image: h.image, Command: []string{"-log-bytes", "1000", "-exit", itoa(int64(i))}, Timeout: time.Minute,
			})
			if err != nil {
				t.Error(err)
				return
			}
			_, res := collect(t, run, nil)
			if res.ExitCode != i || res.Error != "" {
				t.Errorf("run %d: result = %+v, want exit %d", i, res, i)
			}
			<-run.Done()
			if got := h.prov.RequestsFor(run.ID); got != 2 {
				t.Errorf("run %d: Hetzner API requests = %d, want 2 (create and delete)", i, got)
			}
		}()
	}
	wg.Wait()
	h.assertNoServers(t)
	if got := h.fake.Requests(); got != 2*n {
		t.Errorf("Hetzner API requests for %d runs = %d, want %d", n, got, 2*n)
	}
	if got := h.fake.RequestsBy("POST", "/servers"); got != n {
		t.Errorf("creates = %d, want %d", got, n)
	}
}

// TestHetznerLabelsAndName: the server is named after the run and carries
// the owner, run and expiry labels and the project SSH key.
func TestHetznerLabelsAndName(t *testing.T) {
	h := newHetznerHarness(t, false, hetzner.Config{Labels: map[string]string{"team": "agents"}})
	exp := time.Now().Add(time.Hour).Unix()
	vm, err := h.prov.Create(context.Background(), coordinator.CreateRequest{
		Name: "sortie-01abc", RunID: "01abc", UserData: []byte("#cloud-config\n"),
		Labels: map[string]string{"managed-by": "sortie", "owner": "test-owner", "run": "01abc", "expires": itoa(exp)},
	})
	if err != nil {
		t.Fatal(err)
	}
	servers := h.fake.Servers()
	if len(servers) != 1 || servers[0].Name != "sortie-01abc" {
		t.Fatalf("servers = %+v, want one named sortie-01abc", servers)
	}
	l := servers[0].Labels
	for k, want := range map[string]string{"managed-by": "sortie", "owner": "test-owner", "run": "01abc", "expires": itoa(exp), "team": "agents"} {
		if l[k] != want {
			t.Errorf("label %s = %q, want %q", k, l[k], want)
		}
	}
	if servers[0].ServerType != "cx23" || servers[0].Location != "fsn1" || servers[0].Image != "docker-ce" {
		t.Errorf("server = %s in %s from %s, want the defaults cx23, fsn1, docker-ce", servers[0].ServerType, servers[0].Location, servers[0].Image)
	}
	if err := h.prov.Delete(context.Background(), vm); err != nil {
		t.Fatal(err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func labelsFor(runID string, expires time.Time) map[string]string {
	return map[string]string{"managed-by": "sortie", "owner": "test-owner", "run": runID, "expires": itoa(expires.Unix())}
}

func createReq(runID string) coordinator.CreateRequest {
	return coordinator.CreateRequest{Name: "sortie-" + runID, RunID: runID, UserData: []byte("#cloud-config\n"),
		Labels: labelsFor(runID, time.Now().Add(time.Hour))}
}

// TestHetznerFallback: no capacity for the first server type falls back to
// the next type, then to the next location.
func TestHetznerFallback(t *testing.T) {
	h := newHetznerHarness(t, false, hetzner.Config{ServerTypes: []string{"cx23", "cpx22"}, Locations: []string{"fsn1", "nbg1"}})
	h.fake.FailCreate("cx23", "fsn1", "resource_unavailable", 1)
	h.fake.FailCreate("cpx22", "fsn1", "placement_error", 1)
	if _, err := h.prov.Create(context.Background(), createReq("01fb")); err != nil {
		t.Fatal(err)
	}
	s := h.fake.Servers()
	if len(s) != 1 || s[0].ServerType != "cx23" || s[0].Location != "nbg1" {
		t.Errorf("servers = %+v, want one cx23 in nbg1", s)
	}
	if got := h.fake.RequestsBy("POST", "/servers"); got != 3 {
		t.Errorf("create requests = %d, want 3", got)
	}
}

// TestHetznerNoCapacityAnywhere: when every type and location is full the
// tries are bounded and the error names what was tried.
func TestHetznerNoCapacityAnywhere(t *testing.T) {
	h := newHetznerHarness(t, false, hetzner.Config{ServerTypes: []string{"cx23", "cpx22"}, Locations: []string{"fsn1", "nbg1", "hel1"}, MaxCreateTries: 4})
	h.fake.FailCreate("", "", "resource_unavailable", 100)
	_, err := h.prov.Create(context.Background(), createReq("01full"))
	if err == nil {
		t.Fatal("Create succeeded with no capacity anywhere")
	}
	for _, want := range []string{"cx23 in fsn1", "cpx22 in fsn1", "cx23 in nbg1", "resource_unavailable"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if got := h.fake.RequestsBy("POST", "/servers"); got != 4 {
		t.Errorf("create requests = %d, want the bound of 4", got)
	}
	if len(h.fake.Servers()) != 0 {
		t.Error("a server exists after a failed create")
	}
}

// TestHetznerRetriedCreateNoDuplicate: a create whose answer is lost is
// retried; the API says uniqueness_error and the server is found by name.
func TestHetznerRetriedCreateNoDuplicate(t *testing.T) {
	h := newHetznerHarness(t, false, hetzner.Config{})
	h.fake.DropConnection("POST /servers", 1)
	vm, err := h.prov.Create(context.Background(), createReq("01dup"))
	if err != nil {
		t.Fatal(err)
	}
	s := h.fake.Servers()
	if len(s) != 1 || itoa(s[0].ID) != vm.ID {
		t.Errorf("servers = %+v, want exactly the one returned (%s)", s, vm.ID)
	}
}

// TestHetznerNameTakenByAnother: a name taken by a server that is not this
// run's is an error, never adopted.
func TestHetznerNameTakenByAnother(t *testing.T) {
	h := newHetznerHarness(t, false, hetzner.Config{})
	if _, err := h.prov.Create(context.Background(), createReq("01same")); err != nil {
		t.Fatal(err)
	}
	req := createReq("01same")
	req.RunID, req.Labels["run"] = "01other", "01other"
	if _, err := h.prov.Create(context.Background(), req); err == nil || !strings.Contains(err.Error(), "not this run's") {
		t.Errorf("Create = %v, want a refusal", err)
	}
}

// TestHetznerRateLimit: 429s and a spent budget never reach the caller.
func TestHetznerRateLimit(t *testing.T) {
	h := newHetznerHarness(t, false, hetzner.Config{}, hcloudfake.WithRateLimit(3, 3*time.Second))
	h.fake.Fail429(2)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := h.prov.Create(context.Background(), createReq("01rl"+itoa(int64(i))))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Create: %v", err)
		}
	}
	if n := len(h.fake.Servers()); n != 6 {
		t.Errorf("servers = %d, want 6", n)
	}
}

// TestHetznerDelete: delete waits out "locked", a missing server counts as
// deleted, and delete runs even when the caller's context is cancelled.
func TestHetznerDelete(t *testing.T) {
	h := newHetznerHarness(t, false, hetzner.Config{})
	vm, err := h.prov.Create(context.Background(), createReq("01del"))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := strconv.ParseInt(vm.ID, 10, 64)
	h.fake.LockServer(id, 2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.prov.Delete(ctx, vm); err != nil {
		t.Fatalf("Delete (locked twice, cancelled context): %v", err)
	}
	h.assertNoServers(t)
	if err := h.prov.Delete(context.Background(), vm); err != nil {
		t.Errorf("Delete of a deleted server = %v, want nil", err)
	}
}

// TestHetznerUserDataLimit: user-data over 32 KiB is refused before any
// API request.
func TestHetznerUserDataLimit(t *testing.T) {
	h := newHetznerHarness(t, false, hetzner.Config{})
	h.fake.ResetCounters()
	req := createReq("01big")
	req.UserData = []byte("#cloud-config\n" + strings.Repeat("#", 32<<10))
	if _, err := h.prov.Create(context.Background(), req); err == nil || !strings.Contains(err.Error(), "over Hetzner's limit") {
		t.Errorf("Create = %v, want the size refusal", err)
	}
	if n := h.fake.Requests(); n != 0 {
		t.Errorf("%d API requests for refused user-data, want 0", n)
	}
}

// TestHetznerNoHello: a server that never says hello within the boot
// timeout is deleted, and the error names the phase.
func TestHetznerNoHello(t *testing.T) {
	h := newHetznerHarness(t, false, hetzner.Config{})
	h.cfg.BootTimeout = 2 * time.Second
	c, err := coordinator.New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	run, err := c.Start(context.Background(), coordinator.RunSpec{Image: "x", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	_, err = run.Wait(context.Background())
	if err == nil || !strings.Contains(err.Error(), coordinator.PhaseVMBoot) || !strings.Contains(err.Error(), "hello") {
		t.Errorf("run error = %v, want one naming the boot phase and the missing hello", err)
	}
	h.assertNoServers(t)
}

// TestHetznerCancelDuringCreate: a cancel while the create action is still
// running still ends with the server removed.
func TestHetznerCancelDuringCreate(t *testing.T) {
	h := newHetznerHarness(t, true, hetzner.Config{}, hcloudfake.WithActionDelay(3*time.Second))
	run, err := h.c.Start(context.Background(), coordinator.RunSpec{Image: h.image, Command: []string{"-sleep", "forever"}, Timeout: time.Minute, StopGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Cancel(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, res := collect(t, run, nil)
	if !res.Cancelled {
		t.Errorf("result = %+v, want cancelled", res)
	}
	<-run.Done()
	h.assertNoServers(t)
}

// TestHetznerReapAfterRestart: a coordinator started again finds its
// servers by label and removes those whose runs are over, expired or never
// said hello, and never touches a server without its owner label.
func TestHetznerReapAfterRestart(t *testing.T) {
	h := newHetznerHarness(t, false, hetzner.Config{})
	ctx := context.Background()
	now := time.Now()
	mk := func(runID string, labels map[string]string) {
		t.Helper()
		req := createReq(runID)
		req.Labels = labels
		if _, err := h.prov.Create(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	mk("01done", labelsFor("01done", now.Add(time.Hour)))
	mk("01expired", labelsFor("01expired", now.Add(-time.Minute)))
	mk("01nohello", labelsFor("01nohello", now.Add(time.Hour)))
	mk("01busy", labelsFor("01busy", now.Add(time.Hour)))
	foreign := labelsFor("01foreign", now.Add(-time.Hour))
	foreign["owner"] = "someone-else"
	mk("01foreign", foreign)
	// 01done has a result; 01busy said hello; 01nohello said nothing.
	put := func(key string, v any) {
		if err := protocol.PutJSON(ctx, h.store, key, v); err != nil {
			t.Fatal(err)
		}
	}
	put(protocol.NewRunKeys("", "01done").Result(), &protocol.Result{V: 1, RunID: "01done"})
	put(protocol.NewRunKeys("", "01busy").Hello(), &protocol.Hello{V: 1, RunID: "01busy"})

	// A new coordinator with the same owner, as after a restart; the boot
	// timeout has passed for 01nohello (checked at now + 2 boot timeouts).
	c2, err := coordinator.New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	reaped, err := c2.Reap(ctx, now.Add(2*h.cfg.BootTimeout))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range reaped {
		got[r.VM.RunID] = r.Reap
	}
	want := map[string]string{"01done": coordinator.ReapDone, "01expired": coordinator.ReapExpired, "01nohello": coordinator.ReapNoHello}
	if len(got) != len(want) {
		t.Errorf("reaped %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("run %s reaped as %q, want %q", k, got[k], v)
		}
	}
	var left []string
	for _, s := range h.fake.Servers() {
		if s.Status != "deleting" {
			left = append(left, s.Labels["run"])
		}
	}
	sort.Strings(left)
	if strings.Join(left, ",") != "01busy,01foreign" {
		t.Errorf("servers left = %v, want 01busy and the foreign one", left)
	}
}

// TestHetznerCreateCancelledByCaller: a caller that gives up after the API
// took the create (its answer lost) leaves no server behind.
func TestHetznerCreateCancelledByCaller(t *testing.T) {
	h := newHetznerHarness(t, false, hetzner.Config{})
	h.fake.DropConnection("POST /servers", 1)
	ctx, cancel := context.WithCancel(context.Background())
	// The caller's context ends as soon as the create's answer is lost.
	prov, err := hetzner.New(hetzner.Config{Token: fakeToken, Endpoint: h.fake.URL(), RetryDelay: time.Second,
		HTTPClient: &http.Client{Transport: cancelAfterCreate{base: http.DefaultTransport, cancel: cancel}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prov.Create(ctx, createReq("01gaveup")); err == nil {
		t.Fatal("Create succeeded with a cancelled context")
	}
	h.assertNoServers(t)
}

type cancelAfterCreate struct {
	base   http.RoundTripper
	cancel context.CancelFunc
}

func (c cancelAfterCreate) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/servers") {
		c.cancel()
	}
	return resp, err
}
