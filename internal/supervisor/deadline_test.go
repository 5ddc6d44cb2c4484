package supervisor_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/supervisor"
	"github.com/sortie/sortie/internal/testenv"
	"github.com/sortie/sortie/pkg/protocol"
)

func sleeperSpec(image string) func(string) []byte {
	return func(runID string) []byte {
		b, _ := json.Marshal(protocol.Spec{V: protocol.Version, RunID: runID, Image: image,
			Command: []string{"-ignore-term", "-sleep", "forever"}, TimeoutMS: 600000, StopGraceMS: 1000})
		return b
	}
}

// runSupervisor runs the supervisor with the real Docker runtime and
// reports whether it powered off and how long it took.
func runSupervisor(t *testing.T, bootPath string) (poweredOff bool, took time.Duration) {
	t.Helper()
	d, err := supervisor.NewDocker(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var off atomic.Bool
	t0 := time.Now()
	err = supervisor.Run(context.Background(), supervisor.Config{
		BootPath: bootPath, WorkDir: t.TempDir(), Runtime: d,
		PowerOff: func() error { off.Store(true); return nil },
	})
	if err != nil {
		t.Logf("Run: %v", err)
	}
	return off.Load(), time.Since(t0)
}

// TestVMDeadline: at the VM deadline the supervisor stops the container,
// writes a result that says so, and self-destructs, on its own clock.
func TestVMDeadline(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker and MinIO")
	}
	testenv.Docker(t)
	image := testenv.TestAgentImage(t)
	bootPath, s3, keys := bootRunWith(t, time.Now().Add(4*time.Second), nil, sleeperSpec(image))
	off, _ := runSupervisor(t, bootPath)
	if !off {
		t.Error("no self-destruct at the VM deadline")
	}
	var res protocol.Result
	if err := protocol.GetJSON(context.Background(), s3, keys.Result(), &res); err != nil {
		t.Fatalf("no result: %v", err)
	}
	if !res.DeadlineExceeded || res.Error == "" {
		t.Errorf("result = %+v, want deadline exceeded with an error", res)
	}
	testenv.AssertNoContainers(t, res.RunID)
}

// TestVMDeadlineStoreUnreachable: the deadline holds even when the store
// cannot be reached: the container is stopped and the VM self-destructs
// within a bounded time.
func TestVMDeadlineStoreUnreachable(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker and MinIO")
	}
	testenv.Docker(t)
	image := testenv.TestAgentImage(t)
	// The VM reaches MinIO through a proxy that the test cuts.
	var cut atomic.Bool
	var proxy *httptest.Server
	vmEndpoint := func(real string) string {
		u, _ := url.Parse(real)
		rp := httputil.NewSingleHostReverseProxy(u)
		proxy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if cut.Load() {
				hj, ok := w.(http.Hijacker)
				if ok {
					if c, _, err := hj.Hijack(); err == nil {
						c.Close()
						return
					}
				}
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			rp.ServeHTTP(w, r)
		}))
		t.Cleanup(proxy.Close)
		return proxy.URL
	}
	deadline := time.Now().Add(6 * time.Second)
	bootPath, s3, keys := bootRunWith(t, deadline, vmEndpoint, sleeperSpec(image))
	// Cut the store once the container runs.
	go func() {
		for {
			var st protocol.Status
			if err := protocol.GetJSON(context.Background(), s3, keys.Status(), &st); err == nil && st.Phase == protocol.PhaseRunning {
				cut.Store(true)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	off, _ := runSupervisor(t, bootPath)
	if !cut.Load() {
		t.Fatal("the store was never cut: the container did not run")
	}
	if !off {
		t.Error("no self-destruct at the deadline with the store unreachable")
	}
	if late := time.Since(deadline); late > time.Minute {
		t.Errorf("self-destruct came %s after the deadline, want within a bounded minute", late)
	}
	var hello protocol.Hello
	_ = protocol.GetJSON(context.Background(), s3, keys.Hello(), &hello)
	testenv.AssertNoContainers(t, hello.RunID)
}

// TestStopGraceEndsAtDeadline: a stop grace longer than the time left
// before the VM deadline is cut at the deadline: the deadline wins.
func TestStopGraceEndsAtDeadline(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker and MinIO")
	}
	testenv.Docker(t)
	image := testenv.TestAgentImage(t)
	deadline := time.Now().Add(6 * time.Second)
	bootPath, s3, keys := bootRunWith(t, deadline, nil, func(runID string) []byte {
		b, _ := json.Marshal(protocol.Spec{V: protocol.Version, RunID: runID, Image: image,
			Command: []string{"-ignore-term", "-sleep", "forever"}, TimeoutMS: 2000, StopGraceMS: 120000})
		return b
	})
	off, _ := runSupervisor(t, bootPath)
	if !off {
		t.Error("no self-destruct")
	}
	// The container was killed at the deadline, not 120 s after the timeout.
	if late := time.Since(deadline); late > 45*time.Second {
		t.Errorf("the run ended %s after the VM deadline: the stop grace outlived it", late)
	}
	var res protocol.Result
	if err := protocol.GetJSON(context.Background(), s3, keys.Result(), &res); err != nil {
		t.Fatalf("no result: %v", err)
	}
	if !res.TimedOut || res.ExitCode != 137 {
		t.Errorf("result = %+v, want timed out and killed (137)", res)
	}
}
