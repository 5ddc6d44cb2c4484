package supervisor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/store"
	"github.com/sortie/sortie/internal/supervisor"
	"github.com/sortie/sortie/internal/testenv"
	"github.com/sortie/sortie/pkg/protocol"
)

// bootRun writes what a coordinator writes for a run (the sealed bundle and
// the given spec bytes) to MinIO and returns a boot file for it.
func bootRun(t *testing.T, specJSON func(runID string) []byte) (bootPath string, s3 *store.S3, keys protocol.RunKeys) {
	t.Helper()
	return bootRunWith(t, time.Now().Add(time.Minute), nil, specJSON)
}

// bootRunWith is bootRun with a VM deadline and, optionally, a function that
// turns the store endpoint into the one the VM uses (a proxy, say).
func bootRunWith(t *testing.T, deadline time.Time, vmEndpoint func(string) string, specJSON func(runID string) []byte) (bootPath string, s3 *store.S3, keys protocol.RunKeys) {
	t.Helper()
	sc := testenv.MinIO(t)
	endpoint := sc.Endpoint
	if vmEndpoint != nil {
		endpoint = vmEndpoint(endpoint)
	}
	s3, err := store.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	runID := "01testrun" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", ""))
	keys = protocol.NewRunKeys("", runID)
	key, _ := protocol.NewBootstrapKey()
	sealed, err := protocol.Seal(key, &protocol.Bootstrap{V: protocol.Version, RunID: runID, Store: protocol.StoreAccess{
		Mode: protocol.AccessCredentials, Endpoint: endpoint, Region: sc.Region, Bucket: sc.Bucket,
		PathStyle: sc.PathStyle, AccessKeyID: sc.AccessKeyID, SecretAccessKey: sc.SecretAccessKey,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s3.Put(ctx, keys.Bootstrap(), bytes.NewReader(sealed)); err != nil {
		t.Fatal(err)
	}
	if err := s3.Put(ctx, keys.Spec(), bytes.NewReader(specJSON(runID))); err != nil {
		t.Fatal(err)
	}
	url, err := s3.PresignGet(ctx, keys.Bootstrap(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	boot, _ := json.Marshal(protocol.Boot{V: protocol.Version, RunID: runID, BootstrapURL: url, BootstrapKey: key,
		Deadline: deadline, SelfDestruct: protocol.SelfDestructPoweroff})
	bootPath = filepath.Join(t.TempDir(), "boot.json")
	if err := os.WriteFile(bootPath, boot, 0o600); err != nil {
		t.Fatal(err)
	}
	return bootPath, s3, keys
}

// TestUnknownSpecVersion: a spec of a protocol version the supervisor does
// not speak yields a result with a clear error, not a crash or a guess.
func TestUnknownSpecVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("needs MinIO")
	}
	bootPath, s3, keys := bootRun(t, func(runID string) []byte {
		return []byte(`{"v":99,"run_id":"` + runID + `","image":"x","timeout_ms":1000,"new_field":{"a":1}}`)
	})
	poweredOff := false
	err := supervisor.Run(context.Background(), supervisor.Config{
		BootPath: bootPath, WorkDir: t.TempDir(), Runtime: noRuntime{t},
		PowerOff: func() error { poweredOff = true; return nil },
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var res protocol.Result
	if err := protocol.GetJSON(context.Background(), s3, keys.Result(), &res); err != nil {
		t.Fatalf("no result: %v", err)
	}
	if !strings.Contains(res.Error, "protocol version 99 is not supported") || res.ExitCode != -1 {
		t.Errorf("result = exit %d, error %q; want -1 and a clear version error", res.ExitCode, res.Error)
	}
	var hello protocol.Hello
	if err := protocol.GetJSON(context.Background(), s3, keys.Hello(), &hello); err != nil {
		t.Errorf("no hello: %v", err)
	}
	if !poweredOff {
		t.Error("the supervisor did not self-destruct (power off) after the run")
	}
}

// noRuntime fails the test if the supervisor touches containers.
type noRuntime struct{ t *testing.T }

func (n noRuntime) fail() { n.t.Helper(); n.t.Error("the runtime was used") }
func (n noRuntime) ImageExists(context.Context, string) (bool, error) {
	n.fail()
	return false, nil
}
func (n noRuntime) Pull(context.Context, string, *protocol.RegistryAuth) error {
	n.fail()
	return nil
}
func (n noRuntime) Create(context.Context, supervisor.ContainerConfig) (string, error) {
	n.fail()
	return "", nil
}
func (n noRuntime) Attach(context.Context, string, io.Writer, io.Writer) (<-chan error, error) {
	n.fail()
	return nil, nil
}
func (n noRuntime) Start(context.Context, string) error { n.fail(); return nil }
func (n noRuntime) Wait(context.Context, string) (supervisor.ExitStatus, error) {
	n.fail()
	return supervisor.ExitStatus{}, nil
}
func (n noRuntime) Stop(context.Context, string, time.Duration) error { n.fail(); return nil }
func (n noRuntime) Remove(context.Context, string) error              { n.fail(); return nil }

// TestRestartAfterClaim: a supervisor that finds its own hello (it crashed
// after claiming the run and was restarted) does not renumber events: it
// continues after the last durable one and writes a result that says what
// happened.
func TestRestartAfterClaim(t *testing.T) {
	if testing.Short() {
		t.Skip("needs MinIO")
	}
	bootPath, s3, keys := bootRun(t, func(runID string) []byte {
		return []byte(`{"v":1,"run_id":"` + runID + `","image":"x","timeout_ms":1000}`)
	})
	ctx := context.Background()
	runID := strings.TrimSuffix(strings.TrimPrefix(keys.Root(), "runs/"), "/")
	if err := protocol.PutJSON(ctx, s3, keys.Hello(), &protocol.Hello{V: protocol.Version, RunID: runID}); err != nil {
		t.Fatal(err)
	}
	if err := protocol.PutJSON(ctx, s3, keys.Status(), &protocol.Status{V: protocol.Version, RunID: runID, LastEvent: 7}); err != nil {
		t.Fatal(err)
	}
	err := supervisor.Run(ctx, supervisor.Config{
		BootPath: bootPath, WorkDir: t.TempDir(), Runtime: quietRuntime{},
		PowerOff: func() error { return nil },
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var res protocol.Result
	if err := protocol.GetJSON(ctx, s3, keys.Result(), &res); err != nil {
		t.Fatalf("no result: %v", err)
	}
	if !strings.Contains(res.Error, "restarted") || res.LastEvent < 7 {
		t.Errorf("result = error %q, last event %d; want a restart error and events after 7", res.Error, res.LastEvent)
	}
	if _, err := s3.Get(ctx, keys.Event(1)); err == nil {
		t.Error("event 1 was rewritten by the restarted supervisor")
	}
}

// quietRuntime is a runtime that has nothing to remove.
type quietRuntime struct{ noRuntime }

func (quietRuntime) Remove(context.Context, string) error { return nil }

// TestRestartAfterBundleDeleted: a supervisor restarted after the host
// deleted the bundle opens the copy it kept and still writes a result, so
// the host can delete the VM instead of waiting for the deadline.
func TestRestartAfterBundleDeleted(t *testing.T) {
	if testing.Short() {
		t.Skip("needs MinIO")
	}
	bootPath, s3, keys := bootRun(t, func(runID string) []byte {
		return []byte(`{"v":1,"run_id":"` + runID + `","image":"x","timeout_ms":1000}`)
	})
	ctx := context.Background()
	runID := strings.TrimSuffix(strings.TrimPrefix(keys.Root(), "runs/"), "/")
	sealed, err := s3.Get(ctx, keys.Bootstrap())
	if err != nil {
		t.Fatal(err)
	}
	// What the first life left: its claim, its bundle copy; the host then
	// deleted the bundle.
	work := t.TempDir()
	if err := os.MkdirAll(filepath.Join(work, "runs", runID), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "runs", runID, "bundle.sealed"), sealed, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := protocol.PutJSON(ctx, s3, keys.Hello(), &protocol.Hello{V: protocol.Version, RunID: runID}); err != nil {
		t.Fatal(err)
	}
	if err := s3.Delete(ctx, keys.Bootstrap()); err != nil {
		t.Fatal(err)
	}
	err = supervisor.Run(ctx, supervisor.Config{
		BootPath: bootPath, WorkDir: work, Runtime: quietRuntime{},
		PowerOff: func() error { return nil },
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var res protocol.Result
	if err := protocol.GetJSON(ctx, s3, keys.Result(), &res); err != nil {
		t.Fatalf("no result: %v", err)
	}
	if !strings.Contains(res.Error, "restarted") {
		t.Errorf("result error = %q, want it to say the supervisor restarted", res.Error)
	}
	if _, err := os.Stat(filepath.Join(work, "runs", runID)); !os.IsNotExist(err) {
		t.Errorf("the run directory (with the bundle copy) was not wiped: %v", err)
	}
}
