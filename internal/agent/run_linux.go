//go:build linux

package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"unsafe"
)

// Exit codes of Run when the command never ran, as a POSIX shell reports them.
const (
	ExitCannotExecute = 126 // found but not executable
	ExitNotFound      = 127 // not found
)

// Forwarded are the signals Run passes on to the child's process group.
// SIGKILL cannot be caught: a container that is killed takes every process
// of its PID namespace with it.
var Forwarded = []os.Signal{
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP,
	syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2,
}

// Run runs argv as a child in its own process group and waits for it, doing
// what PID 1 of a container must: it forwards the Forwarded signals to the
// child's group, reaps every process that is re-parented to it (when it is
// not PID 1 it makes itself a child subreaper, so the same holds), and
// returns the child's exit code, or 128+N when signal N killed it. When
// stdin is its controlling terminal (docker run -t) the child's group is put
// in the foreground so an interactive shell can read it.
//
// The error is non-nil only when the command could not be started; the code
// is then ExitNotFound or ExitCannotExecute. Run writes nothing itself.
func Run(argv []string, stdin, stdout, stderr *os.File) (int, error) {
	if len(argv) == 0 {
		return ExitCannotExecute, errors.New("run: no command")
	}
	// Subscribe before the child exists, so no signal and no SIGCHLD can
	// slip between its start and the loop.
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, append([]os.Signal{syscall.SIGCHLD, syscall.SIGTTIN, syscall.SIGTTOU}, Forwarded...)...)
	defer signal.Stop(sigs)
	if os.Getpid() != 1 {
		// Best effort: without it orphans go to the real init, which reaps them.
		_ = setChildSubreaper()
	}

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if stdin != nil && isControllingTerminal(stdin) {
		cmd.SysProcAttr.Foreground = true
		cmd.SysProcAttr.Ctty = int(stdin.Fd())
	}
	if err := cmd.Start(); err != nil {
		return startFailureCode(err), fmt.Errorf("start %s: %w", argv[0], err)
	}
	pid := cmd.Process.Pid
	// cmd.Wait is never called: the loop below reaps the child with every
	// other process, and a second waiter would race it.
	for sig := range sigs {
		switch sig {
		case syscall.SIGCHLD:
			if status, done := reap(pid); done {
				return exitCode(status), nil
			}
		case syscall.SIGTTIN, syscall.SIGTTOU:
			// Caught (not ignored, which the child would inherit) so Run
			// is not stopped when it is no longer the terminal's foreground.
		default:
			forward(pid, sig.(syscall.Signal))
		}
	}
	panic("unreachable: signal channel closed")
}

// reap collects every exited child without blocking and reports whether
// pid was among them.
func reap(pid int) (status syscall.WaitStatus, done bool) {
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || got <= 0 { // ECHILD: none left; 0: none exited yet
			return status, done
		}
		if got == pid {
			status, done = ws, true
		}
	}
}

// forward sends sig to the child's process group, or to the child alone if
// it has left the group.
func forward(pid int, sig syscall.Signal) {
	if err := syscall.Kill(-pid, sig); errors.Is(err, syscall.ESRCH) {
		_ = syscall.Kill(pid, sig)
	}
}

func exitCode(ws syscall.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	default:
		return 1
	}
}

func startFailureCode(err error) int {
	var execErr *exec.Error
	switch {
	case errors.As(err, &execErr) && errors.Is(execErr.Err, exec.ErrNotFound),
		errors.Is(err, fs.ErrNotExist):
		return ExitNotFound
	default: // permission denied, exec format error, ...
		return ExitCannotExecute
	}
}

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER from <linux/prctl.h>.
const prSetChildSubreaper = 36

func setChildSubreaper() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return errno
	}
	return nil
}

// isControllingTerminal reports whether f is the controlling terminal of
// this process: only then can the child's group be made its foreground.
func isControllingTerminal(f *os.File) bool {
	var pgrp int32
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TIOCGPGRP, uintptr(unsafe.Pointer(&pgrp)))
	return errno == 0
}
