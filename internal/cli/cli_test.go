package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sortie/sortie/internal/testenv"
)

// TestRunFlagsRefuseBadInput: bad flags get exit 125 and a message that
// says what to fix, before anything starts.
func TestRunFlagsRefuseBadInput(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--timeout", "1m"}, "image is required"},
		{[]string{"run", "--image", "x", "--timeout", "0s"}, "timeout must be positive"},
		{[]string{"run", "--image", "x", "--timeout", "-5s"}, "timeout must be positive"},
		{[]string{"run", "--image", "x", "--workspace", "/no/such/dir"}, "does not exist"},
		{[]string{"run", "--image", "x", "-e", "NOEQUALS"}, "want NAME=value"},
		{[]string{"run", "--image", "x", "--memory", "lots"}, "--memory"},
		{[]string{"run", "--image", "x", "--input", "{bad"}, "input is not valid JSON"},
		{[]string{"run", "--image", "x", "--timeout", "1ns"}, "timeout must be at least 1s"},
		{[]string{"run", "--image", "x", "--workdir", "rel"}, "must be an absolute path"},
		{[]string{"run", "--image", "x", "--pids", "-1"}, "pids limit must not be negative"},
		{[]string{"run", "--image", "x", "--outbox", "/proc/nope"}, "outbox folder"},
		{[]string{"run", "--image", "x", "--secret", "SORTIE_TEST_SURELY_UNSET"}, "not set in this environment"},
		{[]string{"run", "--image", "x", "-e", "SORTIE_OUTBOX=/tmp"}, "SORTIE_OUTBOX is set by Sortie for the agent"},
		{[]string{"run", "--image", "x", "--message", "hi", "--message", " "}, "--message 2 is empty"},
		{[]string{"run", "--image", "x", "--cpus", "-1"}, "CPU limit must not be negative, got -1 CPUs"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(context.Background(), append(tt.args, "--state-dir", t.TempDir()), &out, &errb, "test")
			if code != ExitSortie {
				t.Errorf("exit code = %d, want %d", code, ExitSortie)
			}
			if !strings.Contains(errb.String(), tt.want) {
				t.Errorf("stderr = %q, want it to contain %q", errb.String(), tt.want)
			}
		})
	}
}

// TestRunEndToEnd: `coordinator run --json` on the embedded default prints
// JSON lines, saves the outbox and exits with the agent's exit code.
func TestRunEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker")
	}
	testenv.Docker(t)
	image := testenv.TestAgentImage(t)
	dir := t.TempDir()
	sup := testenv.SupervisorBinary(t)
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{
		"run", "--state-dir", filepath.Join(dir, "state"), "--supervisor", sup, "--json",
		"--image", image, "--timeout", "1m", "--outbox", out, "--message", "ping",
		"--", "-log-bytes", "150", "-outbox", "r.txt=ok", "-wait-message", "30s", "-exit", "3",
	}, &stdout, &stderr, "test")
	if code != 3 {
		t.Fatalf("exit code = %d, want 3 (the agent's); stderr:\n%s", code, stderr.String())
	}
	var types []string
	var text strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var ev struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("stdout line is not JSON: %q: %v", line, err)
		}
		types = append(types, ev.Type)
		if ev.Type == "log" {
			text.WriteString(ev.Text)
		}
	}
	if len(types) == 0 || types[len(types)-1] != "result" {
		t.Errorf("event types = %v, want the last to be result", types)
	}
	if !strings.HasPrefix(text.String(), "00000000 ") || text.Len() != 150 {
		t.Errorf("log text = %q, want the agent's 150 bytes", text.String())
	}
	for name, want := range map[string]string{"r.txt": "ok", "reply-1.txt": "got: ping"} {
		if b, err := os.ReadFile(filepath.Join(out, name)); err != nil || string(b) != want {
			t.Errorf("outbox %s = %q, %v; want %q", name, b, err, want)
		}
	}
}
