//go:build !linux

package agent

import (
	"errors"
	"os"
	"syscall"
)

// Exit codes of Run when the command never ran, as a POSIX shell reports them.
const (
	ExitCannotExecute = 126 // found but not executable
	ExitNotFound      = 127 // not found
)

// Forwarded are the signals Run passes on to the child's process group.
var Forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP}

// Run needs Linux: sortie-agent is the entrypoint of a Linux container.
func Run(argv []string, stdin, stdout, stderr *os.File) (int, error) {
	return ExitCannotExecute, errors.New("run: sortie-agent run works on Linux only")
}
