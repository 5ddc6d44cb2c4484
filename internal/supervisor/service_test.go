package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/testenv"
	"github.com/sortie/sortie/pkg/protocol"
)

// TestServiceUnitVerifies installs the service the way `vm-supervisor
// service install` does, on kardianos/service's systemd implementation
// chosen explicitly (systemd need not be PID 1), as a user service under a
// temporary HOME, and checks the unit it writes with `systemd-analyze
// verify`.
func TestServiceUnitVerifies(t *testing.T) {
	analyze := testenv.Tool(t, "systemd-analyze", "systemd")
	bin := testenv.SupervisorBinary(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	userDir := filepath.Join(home, ".config", "systemd", "user")
	unitPath := filepath.Join(userDir, ServiceName+".service")

	installErr := InstallService(ServiceOptions{Executable: bin, System: SystemdSystem, UserService: true})
	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatalf("install wrote no unit (install error: %v): %v", installErr, err)
	}
	if installErr != nil {
		// After writing the unit, Install runs `systemctl --user enable`
		// and `systemctl --user daemon-reload`; without a user manager
		// (systemd is not PID 1 here) one of them fails. Any earlier
		// failure leaves no unit or an incomplete one.
		if !bytes.HasSuffix(unit, []byte("WantedBy=multi-user.target\n")) {
			t.Fatalf("install: %v; the unit is incomplete:\n%s", installErr, unit)
		}
		step := "systemctl --user enable"
		if _, err := os.Lstat(filepath.Join(userDir, "multi-user.target.wants", ServiceName+".service")); err == nil {
			step = "systemctl --user daemon-reload"
		}
		t.Logf("ignored the failure of %s, which needs a running user manager: %v", step, installErr)
	}
	t.Logf("unit file:\n%s", unit)

	lines := strings.Split(string(unit), "\n")
	for _, want := range []string{
		"ExecStart=" + bin + " run --boot " + DefaultBootPath,
		"Restart=on-failure",
		"RestartSec=2",
		"RestartPreventExitStatus=3",
		"After=network-online.target docker.service",
		"Wants=network-online.target",
	} {
		if !containsLine(lines, want) {
			t.Errorf("the unit lacks the line %q", want)
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "EnvironmentFile=") || strings.HasPrefix(l, "Environment=") {
			t.Errorf("the unit has %q; its environment must not come from outside it", l)
		}
	}

	// verify wants the unit's file name to be the unit name.
	verifyPath := filepath.Join(t.TempDir(), ServiceName+".service")
	if err := os.WriteFile(verifyPath, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), analyze, "verify", verifyPath)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	// verify exits 0 on warnings too: any word on stderr is a failure.
	if err != nil || stderr.Len() > 0 {
		t.Errorf("systemd-analyze verify %s: %v\nstderr:\n%s\nstdout:\n%s", verifyPath, err, stderr.String(), stdout.String())
	}
}

func containsLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func TestServiceConfigRefusesPathsThatNeedQuoting(t *testing.T) {
	tests := map[string]ServiceOptions{
		"relative boot file": {BootPath: "boot.json", Executable: "/usr/local/bin/vm-supervisor"},
		"space":              {BootPath: "/etc/sortie/my boot.json", Executable: "/usr/local/bin/vm-supervisor"},
		"specifier":          {BootPath: "/etc/sortie/%i.json", Executable: "/usr/local/bin/vm-supervisor"},
		"variable":           {Executable: "/usr/local/bin/$X"},
		"quote":              {Executable: `/usr/local/bin/"vm"`},
		"newline":            {BootPath: "/etc/sortie/boot.json\nExecStartPre=/bin/sh", Executable: "/usr/local/bin/vm-supervisor"},
	}
	for name, o := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := ServiceConfig(o); err == nil {
				t.Fatal("ServiceConfig succeeded, want an error")
			}
		})
	}
	cfg, err := ServiceConfig(ServiceOptions{Executable: "/usr/local/bin/vm-supervisor"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(cfg.Arguments, " "), "run --boot "+DefaultBootPath; got != want {
		t.Errorf("arguments = %q, want %q", got, want)
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("store unreachable"), 1},
		{ErrBoot, ExitNoRestart},
		{errors.Join(errors.New("x"), ErrBundleGone), ExitNoRestart},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

// TestRunManagedBootError: under the service manager, a run that ends on
// its own ends the process (kardianos/service would otherwise wait for a
// signal) with Run's error.
func TestRunManagedBootError(t *testing.T) {
	err := runManagedWithin(t, context.Background(), Config{BootPath: filepath.Join(t.TempDir(), "missing.json"), WorkDir: t.TempDir()})
	if !errors.Is(err, ErrBoot) || ExitCode(err) != ExitNoRestart {
		t.Fatalf("runManaged = %v (exit %d), want ErrBoot (exit %d)", err, ExitCode(err), ExitNoRestart)
	}
}

// TestRunManagedStop: a stop from the service manager cancels the run's
// context; Run returns, and so does runManaged, with Run's error.
func TestRunManagedStop(t *testing.T) {
	asked := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case asked <- struct{}{}:
		default:
		}
		http.Error(w, "not yet", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	boot, err := json.Marshal(protocol.Boot{
		V: protocol.Version, RunID: "01testrunmanagedstop", BootstrapURL: srv.URL + "/bootstrap.sealed",
		BootstrapKey: bytes.Repeat([]byte{7}, protocol.BootstrapKeySize),
		Deadline:     time.Now().Add(time.Hour), SelfDestruct: protocol.SelfDestructExit,
	})
	if err != nil {
		t.Fatal(err)
	}
	bootPath := filepath.Join(t.TempDir(), "boot.json")
	if err := os.WriteFile(bootPath, boot, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	go func() {
		<-asked // the run is fetching its bundle
		stop()  // what SIGTERM does in cmd/vm-supervisor
	}()
	err = runManagedWithin(t, ctx, Config{BootPath: bootPath, WorkDir: t.TempDir()})
	if err == nil || !errors.Is(err, context.Canceled) || ExitCode(err) != 1 {
		t.Fatalf("runManaged = %v (exit %d), want a cancelled run (exit 1)", err, ExitCode(err))
	}
}

// runManagedWithin runs runManaged on the systemd implementation and fails
// the test if it does not return within a minute.
func runManagedWithin(t *testing.T, ctx context.Context, cfg Config) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- runManaged(ctx, cfg, SystemdSystem) }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatal("runManaged did not return")
		return nil
	}
}
