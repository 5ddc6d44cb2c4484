//go:build linux

package agent

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// helperEnv makes the test binary act as "sortie-agent run": Run must be
// tested in a process of its own, since it reaps every child of its process
// and turns the process into a child subreaper.
const helperEnv = "SORTIE_AGENT_TEST_RUN"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Unsetenv(helperEnv)
		code, err := Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sortie-agent:", err)
		}
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// startRun starts "sortie-agent run" on argv in a helper process.
func startRun(t *testing.T, argv ...string) (cmd *exec.Cmd, stdout *bufio.Reader, stderr *bytes.Buffer) {
	t.Helper()
	requireSh(t)
	cmd = exec.Command(os.Args[0], argv...)
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	stderr = new(bytes.Buffer)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, bufio.NewReader(out), stderr
}

func requireSh(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh on PATH")
	}
}

func exitCodeOf(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("wait: %v", err)
		}
		return cmd.ProcessState.ExitCode()
	case <-time.After(20 * time.Second):
		t.Fatal("sortie-agent run did not exit within 20s")
		return -1
	}
}

func expectLine(t *testing.T, r *bufio.Reader, want string) {
	t.Helper()
	got, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read child stdout: %v (got %q so far)", err, got)
	}
	if got = strings.TrimSuffix(got, "\n"); got != want {
		t.Fatalf("child stdout line = %q, want %q", got, want)
	}
}

func TestRunExitCode(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   int
	}{
		{"zero", "exit 0", 0},
		{"seven", "exit 7", 7},
		{"max", "exit 255", 255},
		{"killed by SIGTERM", "kill -TERM $$", 128 + 15},
		{"killed by SIGKILL", "kill -KILL $$", 128 + 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, _, stderr := startRun(t, "sh", "-c", tt.script)
			if got := exitCodeOf(t, cmd); got != tt.want {
				t.Errorf("exit code = %d, want %d (stderr %q)", got, tt.want, stderr)
			}
		})
	}
}

func TestRunCannotStart(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		argv []string
		want int
	}{
		{"not on PATH", []string{"sortie-no-such-command"}, ExitNotFound},
		{"no such file", []string{"/no/such/file"}, ExitNotFound},
		{"not executable", []string{notExec}, ExitCannotExecute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, _, stderr := startRun(t, tt.argv...)
			if got := exitCodeOf(t, cmd); got != tt.want {
				t.Errorf("exit code = %d, want %d", got, tt.want)
			}
			if !strings.Contains(stderr.String(), tt.argv[0]) {
				t.Errorf("stderr = %q, want it to name %s", stderr, tt.argv[0])
			}
		})
	}
}

func TestRunPassesStdioThrough(t *testing.T) {
	cmd, stdout, stderr := startRun(t, "sh", "-c", `echo out; echo err >&2; printf 'no newline'`)
	all, err := io.ReadAll(stdout)
	if err != nil {
		t.Fatal(err)
	}
	if code := exitCodeOf(t, cmd); code != 0 {
		t.Fatalf("exit code = %d, want 0", code)
	}
	if got, want := string(all), "out\nno newline"; got != want {
		t.Errorf("stdout = %q, want %q: run must add nothing", got, want)
	}
	if got, want := stderr.String(), "err\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}

// TestRunForwardsSignals checks that a signal to sortie-agent reaches the
// child's whole process group: the shell's foreground sleep dies at once
// (so the trap runs without waiting 30s), and the trap's exit code is the
// run's.
func TestRunForwardsSignals(t *testing.T) {
	tests := []struct {
		sig  syscall.Signal
		name string
	}{
		{syscall.SIGTERM, "TERM"},
		{syscall.SIGINT, "INT"},
		{syscall.SIGHUP, "HUP"},
		{syscall.SIGUSR1, "USR1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script := fmt.Sprintf(`trap 'echo trapped %s; exit 42' %s; echo $$; sleep 30; echo "sleep ended"`, tt.name, tt.name)
			cmd, stdout, stderr := startRun(t, "sh", "-c", script)
			// A signal that reached the shell before it forked the sleep
			// would wait for the sleep: wait until the sleep runs.
			waitForChild(t, readPID(t, stdout), "sleep")
			start := time.Now()
			if err := cmd.Process.Signal(tt.sig); err != nil {
				t.Fatal(err)
			}
			expectLine(t, stdout, "trapped "+tt.name)
			if code := exitCodeOf(t, cmd); code != 42 {
				t.Errorf("exit code = %d, want 42 (stderr %q)", code, stderr)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %s: the signal did not reach the sleep in the child's group", d)
			}
		})
	}
}

func TestRunForwardedSignalKillsChild(t *testing.T) {
	cmd, stdout, _ := startRun(t, "sh", "-c", "echo ready; exec sleep 30")
	expectLine(t, stdout, "ready")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got, want := exitCodeOf(t, cmd), 128+int(syscall.SIGTERM); got != want {
		t.Errorf("exit code = %d, want %d", got, want)
	}
}

// TestRunReapsOrphans checks that a grandchild whose parent exits is
// re-parented to sortie-agent and reaped when it ends, instead of lingering
// as a zombie.
func TestRunReapsOrphans(t *testing.T) {
	cmd, stdout, _ := startRun(t, "sh", "-c", `sh -c 'sleep 0.5 & echo $!'; sleep 30`)
	orphan := readPID(t, stdout)
	agentPID := cmd.Process.Pid
	deadline := time.Now().Add(10 * time.Second)
	adopted := false
	for {
		state, ppid, ok := procStat(orphan)
		if !ok {
			break // reaped
		}
		if ppid == agentPID {
			adopted = true
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphan %d still there after 10s: state %s, parent %d (agent %d)", orphan, state, ppid, agentPID)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !adopted {
		t.Log("the orphan ended before it was seen re-parented; reaping not observed directly")
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	exitCodeOf(t, cmd)
}

func readPID(t *testing.T, r *bufio.Reader) int {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read child stdout: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("child printed %q, want a PID", line)
	}
	return pid
}

// waitForChild waits until process ppid has a child named comm.
func waitForChild(t *testing.T, ppid int, comm string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			pid, _ := strconv.Atoi(filepath.Base(d))
			c, _ := os.ReadFile(d + "/comm")
			if _, parent, ok := procStat(pid); ok && parent == ppid && strings.TrimSpace(string(c)) == comm {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %d started no %s within 10s", ppid, comm)
}

// procStat returns the state and parent PID of pid from /proc/<pid>/stat.
func procStat(pid int) (state string, ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parens.
	rest := string(b[bytes.LastIndexByte(b, ')')+1:])
	f := strings.Fields(rest)
	if len(f) < 2 {
		return "", 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return f[0], ppid, true
}

// TestRunTerminalForeground checks that with a controlling terminal the
// child's group becomes the terminal's foreground, so an interactive shell
// can read it instead of being stopped by SIGTTIN.
func TestRunTerminalForeground(t *testing.T) {
	requireSh(t)
	master, slave, err := openPTY()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer master.Close()
	cmd := exec.Command(os.Args[0], "sh", "-c", `read line; echo "got $line"`)
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	if _, err := master.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	out := make(chan string, 1)
	go func() {
		var buf bytes.Buffer
		b := make([]byte, 256)
		for !strings.Contains(buf.String(), "got hello") {
			n, err := master.Read(b)
			buf.Write(b[:n])
			if err != nil {
				break
			}
		}
		out <- buf.String()
	}()
	select {
	case got := <-out:
		if !strings.Contains(got, "got hello") {
			t.Errorf("terminal output = %q, want it to contain %q", got, "got hello")
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the child did not read the terminal within 10s (stopped in the background?)")
	}
	if code := exitCodeOf(t, cmd); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
}

func openPTY() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	var unlock int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
		master.Close()
		return nil, nil, errno
	}
	var n uint32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); errno != 0 {
		master.Close()
		return nil, nil, errno
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}
