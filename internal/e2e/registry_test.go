package e2e

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/coordinator"
	"github.com/sortie/sortie/internal/coordinator/local"
	"github.com/sortie/sortie/internal/testenv"
	"github.com/sortie/sortie/pkg/protocol"
)

// userDataRecorder is the local provider, keeping the user-data of every
// VM it is asked for.
type userDataRecorder struct {
	*local.Provider
	mu  sync.Mutex
	all []byte
}

func (p *userDataRecorder) Create(ctx context.Context, req coordinator.CreateRequest) (*coordinator.VM, error) {
	p.mu.Lock()
	p.all = append(p.all, req.UserData...)
	p.mu.Unlock()
	return p.Provider.Create(ctx, req)
}

func (p *userDataRecorder) userData() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return string(p.all)
}

// TestPrivateRegistryPull: the agent image lives only in a private
// registry (the distribution registry on loopback, htpasswd auth). A run
// with a wrong password fails with a result that says the registry refused
// and does not hold the password; a run with the right credentials pulls
// the image and succeeds. Neither password appears in the user-data, the
// spec in the store, an event, a result, or a coordinator or supervisor log
// line.
func TestPrivateRegistryPull(t *testing.T) {
	var logs syncBuffer
	keep := t.TempDir()
	var rec *userDataRecorder
	h := newHarness(t, func(c *coordinator.Config, p *local.Provider) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		p.KeepLogs = keep
		rec = &userDataRecorder{Provider: p}
		c.Provider = rec
	})
	reg := testenv.StartRegistry(t)
	image := reg.Push(t, h.image, "sortie/testagent")
	wrong := protocol.Secret("not-" + reg.Password.Reveal())
	ps := pieces(reg.Password.Reveal(), wrong.Reveal())
	ctx := context.Background()

	var seen strings.Builder // everything the host saw or kept of both runs
	runWith := func(auth *protocol.RegistryAuth) *protocol.Result {
		t.Helper()
		run, err := h.c.Start(ctx, coordinator.RunSpec{
			Image: image, Command: []string{"-log-bytes", "100", "-exit", "0"},
			Registry: auth, Timeout: time.Minute,
		})
		if err != nil {
			t.Fatal(err)
		}
		evs, res := collect(t, run, nil)
		<-run.Done()
		h.assertNothingLeft(t, run.ID)
		all, spec := h.kept(t, keep, run.ID, evs, res)
		seen.WriteString(all)
		if !strings.Contains(string(spec), `"pull":true`) {
			t.Errorf("spec.json = %s; want pull allowed by the registry credentials", spec)
		}
		return res
	}

	bad := runWith(&protocol.RegistryAuth{Server: reg.Host, Username: reg.Username, Password: wrong})
	t.Logf("with a wrong password: %s", bad.Error)
	if bad.ExitCode != -1 || !strings.Contains(bad.Error, "registry refused") {
		t.Errorf("result with a wrong password = exit %d, error %q; want -1 and an error that says the registry refused", bad.ExitCode, bad.Error)
	}
	good := runWith(reg.Auth())
	if !good.Succeeded() {
		t.Errorf("result with the credentials = %+v, want success (the image pulled)", good)
	}

	seen.WriteString(logs.String())
	if found := leaks(seen.String(), ps); len(found) > 0 {
		t.Errorf("registry password pieces leaked into logs, events, results or specs: %q", found)
	}
	ud := rec.userData()
	if !strings.Contains(ud, "#cloud-config") {
		t.Fatalf("no user-data recorded: %q", ud)
	}
	if found := leaks(ud, ps); len(found) > 0 {
		t.Errorf("registry password pieces in the user-data: %q", found)
	}
}
