package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Absent reports a component the test needs but does not have: the test is
// skipped with msg, or fails under CI=true, where nothing may skip.
func Absent(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Tool returns the path of command name, or reports it Absent with the
// Debian package that provides it.
func Tool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Absent(t, name+" is not installed: install Debian's "+debianPackage+" package (scripts/ensure-tools.sh)")
	}
	return p
}
