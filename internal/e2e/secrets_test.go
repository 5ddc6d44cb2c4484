package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/cloudinit"
	"github.com/sortie/sortie/internal/coordinator"
	"github.com/sortie/sortie/internal/coordinator/hetzner"
	"github.com/sortie/sortie/internal/coordinator/local"
	"github.com/sortie/sortie/internal/store"
	"github.com/sortie/sortie/pkg/protocol"
)

// Realistic secrets (made up): an agent API key and a registry password.
const (
	agentKey     = "sk-proj-Xq7vT2mN9pL4kR8sW1yZ3bC6dF0gH5jA"
	registryPass = "ghp_Zr8Kp2Lm5Nq9Rs3Tv6Wx1Yb4Cd7Ef0GhJk"
)

// pieces returns every 8-byte piece of each secret.
func pieces(secrets ...string) []string {
	var out []string
	for _, s := range secrets {
		for i := 0; i+8 <= len(s); i++ {
			out = append(out, s[i:i+8])
		}
	}
	return out
}

// leaks returns the secret pieces found in text.
func leaks(text string, ps []string) []string {
	var found []string
	for _, p := range ps {
		if strings.Contains(text, p) {
			found = append(found, p)
		}
	}
	return found
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSecretsNeverLeak: a run with known secret values (and registry
// credentials, sealed like them) delivers them to the container, and no
// log line (coordinator or supervisor), event, error, result or the spec
// in the store holds any 8-byte piece of them or of the store's secret key.
func TestSecretsNeverLeak(t *testing.T) {
	var logs syncBuffer
	keep := t.TempDir()
	h := newHarness(t, func(c *coordinator.Config, p *local.Provider) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		p.KeepLogs = keep
	})
	storeSecret := h.storeSecret()
	ps := pieces(agentKey, registryPass, storeSecret)
	out := t.TempDir()
	ctx := context.Background()
	run, err := h.c.Start(ctx, coordinator.RunSpec{
		Image:    h.image,
		Command:  []string{"-env-to-outbox", "AGENT_API_KEY=key.txt", "-log-bytes", "500", "-stderr", "working", "-exit", "2"},
		Env:      map[string]string{"MODE": "test"},
		Secrets:  map[string]protocol.Secret{"AGENT_API_KEY": agentKey, "REGISTRY_PASSWORD": registryPass},
		Registry: &protocol.RegistryAuth{Server: "docker.io", Username: "robot", Password: registryPass},
		Timeout:  time.Minute, OutboxDir: out,
	})
	if err != nil {
		t.Fatal(err)
	}
	evs, res := collect(t, run, nil)
	if got, _ := os.ReadFile(filepath.Join(out, "key.txt")); string(got) != agentKey {
		t.Errorf("the container's AGENT_API_KEY = %q, want the secret delivered", got)
	}
	all, spec := h.kept(t, keep, run.ID, evs, res)
	all += logs.String()
	if found := leaks(all, ps); len(found) > 0 {
		t.Errorf("secret pieces leaked into logs, events, result or spec: %q", found)
	}
	if !strings.Contains(string(spec), `"MODE":"test"`) || strings.Contains(string(spec), "REGISTRY_PASSWORD") {
		t.Errorf("spec.json = %s; want the plain env and no secrets", spec)
	}
}

// kept is everything the host saw or kept of a run, as text: its events
// (JSON and printed), its result, the supervisor's log (from keep, the
// local provider's KeepLogs) and its spec.json, which it also returns.
func (h *harness) kept(t *testing.T, keep, runID string, evs []coordinator.Event, res *protocol.Result) (all string, spec []byte) {
	t.Helper()
	var b strings.Builder
	for _, ev := range evs {
		j, _ := json.Marshal(ev)
		b.Write(j)
		fmt.Fprintf(&b, "%v %+v", ev, ev)
	}
	j, _ := json.Marshal(res)
	b.Write(j)
	b.WriteString(res.Error)
	sup, err := os.ReadFile(filepath.Join(keep, coordinator.VMName(runID)+".log"))
	if err != nil || len(sup) == 0 {
		t.Fatalf("no supervisor log kept: %v", err)
	}
	b.Write(sup)
	spec, err = h.store.Get(context.Background(), protocol.NewRunKeys("e2e", runID).Spec())
	if err != nil {
		t.Fatal(err)
	}
	b.Write(spec)
	return b.String(), spec
}

// TestUserDataHoldsNoSecret renders the user-data of a real Hetzner create
// (through the fake API) for a run configured with realistic secrets — the
// store's secret key, a Hetzner token, agent API keys, a registry password —
// and finds no 8-byte piece of any of them in it.
func TestUserDataHoldsNoSecret(t *testing.T) {
	// The delete mode, so the VMs' own Hetzner token is in the bundle too.
	h := newHetznerHarness(t, false, hetzner.Config{SelfDestruct: protocol.SelfDestructDelete, DeleteToken: deleteToken})
	ps := pieces(agentKey, registryPass, fakeToken, deleteToken, h.cfg.VMAccess.SecretAccessKey.Reveal())
	run, err := h.c.Start(context.Background(), coordinator.RunSpec{
		Image: "x", Timeout: time.Minute,
		Secrets:  map[string]protocol.Secret{"AGENT_API_KEY": agentKey, "REGISTRY_PASSWORD": registryPass},
		Registry: &protocol.RegistryAuth{Server: "docker.io", Username: "robot", Password: registryPass},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = run.Abandon(context.Background()) }()
	servers := h.fake.Servers()
	if len(servers) != 1 || servers[0].UserData == "" {
		t.Fatalf("servers = %+v, want one with user-data", servers)
	}
	if found := leaks(servers[0].UserData, ps); len(found) > 0 {
		t.Errorf("user-data holds secret pieces %q:\n%s", found, servers[0].UserData)
	}
}

// TestBundleIsOneTime: the bundle that the user-data points to opens the
// run once. After the hello the host has deleted it: fetching it again
// with the very URL and key from the user-data (what anyone who reads the
// user-data holds) fails.
func TestBundleIsOneTime(t *testing.T) {
	h := newHetznerHarness(t, true, hetzner.Config{})
	run, err := h.c.Start(context.Background(), coordinator.RunSpec{
		Image: h.image, Command: []string{"-exit", "0"}, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	servers := h.fake.Servers()
	if len(servers) != 1 {
		t.Fatalf("servers = %+v, want one", servers)
	}
	params, err := cloudinit.Parse([]byte(servers[0].UserData))
	if err != nil {
		t.Fatal(err)
	}
	_, res := collect(t, run, nil)
	if !res.Succeeded() {
		t.Fatalf("result = %+v, want success: the first fetch must work", res)
	}
	_, err = store.HTTPGet(context.Background(), params.Boot.BootstrapURL)
	var he *store.HTTPError
	if !errors.As(err, &he) || he.StatusCode != http.StatusNotFound {
		t.Errorf("second fetch of the bundle = %v, want 404 (deleted after the hello)", err)
	}
}
