package e2e

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/coordinator"
	"github.com/sortie/sortie/internal/coordinator/local"
	"github.com/sortie/sortie/internal/store"
	"github.com/sortie/sortie/internal/testenv"
	"github.com/sortie/sortie/pkg/protocol"
)

type harness struct {
	c      *coordinator.Coordinator
	prov   *local.Provider
	store  *store.S3
	image  string
	secret string
}

// newHarness wires a coordinator to MinIO, the local provider and a
// freshly built vm-supervisor, and builds the test agent image.
func newHarness(t *testing.T, tune ...func(*coordinator.Config, *local.Provider)) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: needs Docker and MinIO")
	}
	testenv.Docker(t)
	sc := testenv.MinIO(t)
	sc.Prefix = "e2e"
	s3, err := store.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	sup := testenv.SupervisorBinary(t)
	prov := &local.Provider{Dir: filepath.Join(t.TempDir(), "vms")}
	t.Cleanup(func() {
		if err := prov.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown local provider: %v", err)
		}
	})
	cfg := coordinator.Config{
		Store: s3, Prefix: sc.Prefix, Provider: prov, SupervisorPath: sup,
		VMAccess: protocol.StoreAccess{
			Mode: protocol.AccessCredentials, Endpoint: sc.Endpoint, Region: sc.Region, Bucket: sc.Bucket,
			PathStyle: sc.PathStyle, AccessKeyID: sc.AccessKeyID, SecretAccessKey: sc.SecretAccessKey,
		},
		BootTimeout: time.Minute, PollMin: 50 * time.Millisecond, PollMax: 500 * time.Millisecond,
	}
	for _, f := range tune {
		f(&cfg, prov)
	}
	c, err := coordinator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{c: c, prov: prov, store: s3, image: testenv.TestAgentImage(t), secret: sc.SecretAccessKey.Reveal()}
}

// collect reads every event of a run until the channel closes, calling
// onEvent (if set) for each, and returns them with the result.
func collect(t *testing.T, run *coordinator.Run, onEvent func(coordinator.Event)) ([]coordinator.Event, *protocol.Result) {
	t.Helper()
	var evs []coordinator.Event
	timeout := time.After(3 * time.Minute)
	for {
		select {
		case ev, ok := <-run.Events():
			if !ok {
				res, err := run.Wait(context.Background())
				if err != nil {
					t.Fatalf("run %s: %v", run.ID, err)
				}
				return evs, res
			}
			evs = append(evs, ev)
			if onEvent != nil {
				onEvent(ev)
			}
		case <-timeout:
			t.Fatalf("run %s: no end after 3 minutes", run.ID)
		}
	}
}

// assertNothingLeft checks that no local VM process and no container of the
// run is left.
func (h *harness) assertNothingLeft(t *testing.T, runID string) {
	t.Helper()
	if got := h.prov.Running(); len(got) != 0 {
		t.Errorf("local VMs still running: %v", got)
	}
	testenv.AssertNoContainers(t, runID)
}

// storeSecret is the store's secret key the VMs are given.
func (h *harness) storeSecret() string { return h.secret }

// refills returns the refill messages the host wrote into a run's inbox,
// in order.
func (h *harness) refills(t *testing.T, runID string) []*protocol.Message {
	t.Helper()
	keys := protocol.NewRunKeys("e2e", runID)
	var out []*protocol.Message
	for seq := int64(1); ; seq++ {
		var m protocol.Message
		err := protocol.GetJSON(context.Background(), h.store, keys.Inbox(seq), &m)
		if errors.Is(err, protocol.ErrNotFound) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.Type == protocol.MessageRefill {
			out = append(out, &m)
		}
	}
}
