package protocol

import (
	"fmt"
	"strings"
)

// Object names inside a run's prefix. Sequence-numbered names are zero-padded
// to SeqWidth digits so that string order is numeric order.
const (
	SpecName      = "spec.json"
	WorkspaceName = "workspace.tar.gz"
	BootstrapName = "bootstrap.sealed"
	HelloName     = "hello.json"
	StatusName    = "status.json"
	ResultName    = "result.json"
	EventsDir     = "events/"
	InboxDir      = "inbox/"
	BlobsDir      = "blobs/"

	// SeqWidth is the number of digits of a sequence number in a key.
	SeqWidth = 10
)

// RunKeys computes every key of one run. The zero value is not useful; use
// NewRunKeys.
type RunKeys struct {
	root string // "<prefix>/runs/<run-id>/" or "runs/<run-id>/"
}

// NewRunKeys returns the keys of run runID under the store prefix (which may
// be empty). The prefix is normalised: leading and trailing slashes are
// dropped.
func NewRunKeys(prefix, runID string) RunKeys {
	return RunKeys{root: joinPrefix(prefix) + "runs/" + runID + "/"}
}

// Root is the prefix that holds everything of the run, ending in "/".
func (k RunKeys) Root() string { return k.root }

// Spec is the key of the run spec (written by the host).
func (k RunKeys) Spec() string { return k.root + SpecName }

// Workspace is the key of the compressed tar of the workspace (host).
func (k RunKeys) Workspace() string { return k.root + WorkspaceName }

// Bootstrap is the key of the sealed bootstrap bundle (host; deleted after hello).
func (k RunKeys) Bootstrap() string { return k.root + BootstrapName }

// Hello is the key of the supervisor's claim (supervisor).
func (k RunKeys) Hello() string { return k.root + HelloName }

// Status is the key of the heartbeat object (supervisor).
func (k RunKeys) Status() string { return k.root + StatusName }

// Result is the key of the result, the run's commit marker (supervisor).
func (k RunKeys) Result() string { return k.root + ResultName }

// Event is the key of event seq (supervisor). Sequences start at 1.
func (k RunKeys) Event(seq int64) string { return k.root + EventsDir + seqName(seq) + ".json" }

// Inbox is the key of inbox message seq (host). Sequences start at 1.
func (k RunKeys) Inbox(seq int64) string { return k.root + InboxDir + seqName(seq) + ".json" }

// Blob is the key of blob seq, the bytes of one outbox file (supervisor).
func (k RunKeys) Blob(seq int64) string { return k.root + BlobsDir + seqName(seq) }

// SupervisorKey is the content-addressed key of a supervisor binary, shared
// by all runs: <prefix>/bin/vm-supervisor/<goarch>/<sha256>.
func SupervisorKey(prefix, goarch, sha256hex string) string {
	return joinPrefix(prefix) + "bin/vm-supervisor/" + goarch + "/" + sha256hex
}

func seqName(seq int64) string { return fmt.Sprintf("%0*d", SeqWidth, seq) }

func joinPrefix(prefix string) string {
	p := strings.Trim(prefix, "/")
	if p == "" {
		return ""
	}
	return p + "/"
}
