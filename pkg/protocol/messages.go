package protocol

import (
	"encoding/json"
	"time"
)

// Version is the protocol version this package speaks. Every message carries
// it in its "v" field.
const Version = 1

// Spec is what the host asks the VM to run. Written once by the host at
// Spec(); read by the supervisor after it has opened the bootstrap bundle.
type Spec struct {
	V     int    `json:"v"`
	RunID string `json:"run_id"`
	// Image is the container image reference; required.
	Image string `json:"image"`
	// Entrypoint, when set, replaces the image's entrypoint.
	Entrypoint []string `json:"entrypoint,omitempty"`
	// Command, when set, replaces the image's default command.
	Command []string `json:"command,omitempty"`
	// Env is the container's environment (NAME=value semantics).
	Env map[string]string `json:"env,omitempty"`
	// WorkDir is the container's working directory; empty means /workspace.
	WorkDir string `json:"workdir,omitempty"`
	// Workspace is true when the host wrote a workspace archive at Workspace().
	Workspace bool `json:"workspace,omitempty"`
	// Input is an optional JSON document handed to the agent as a file.
	Input json.RawMessage `json:"input,omitempty"`
	// TimeoutMS is the container timeout in milliseconds; must be > 0.
	TimeoutMS int64 `json:"timeout_ms"`
	// StopGraceMS is how long the agent gets between the stop signal and
	// the kill, in milliseconds.
	StopGraceMS int64 `json:"stop_grace_ms"`
	// Deadline is the VM's hard deadline, for information: the supervisor
	// enforces the deadline of the boot file, which the host sets to the
	// same time.
	Deadline time.Time `json:"deadline"`
	// Limits are the container's resource limits; zero means the default.
	Limits Limits `json:"limits"`
	// Pull says whether the supervisor may pull the image when it is absent.
	Pull bool `json:"pull,omitempty"`
	// User runs the container as this user ("uid[:gid]" or a name); empty:
	// the image's own user.
	User string `json:"user,omitempty"`
	// CapAdd lists the Linux capabilities the container keeps; all others
	// are dropped.
	CapAdd []string `json:"cap_add,omitempty"`
	// ReadOnlyRoot makes the container's root filesystem read-only (the
	// workspace, inbox, outbox and /tmp stay writable).
	ReadOnlyRoot bool `json:"read_only_root,omitempty"`
	// CreatedAt is when the host minted the run.
	CreatedAt time.Time `json:"created_at"`
}

// Limits are container resource limits.
type Limits struct {
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
	// NanoCPUs is CPU quota in units of 1e-9 CPUs (1.5 CPUs = 1500000000).
	NanoCPUs  int64 `json:"nano_cpus,omitempty"`
	PidsLimit int64 `json:"pids_limit,omitempty"`
}

// Timeout returns the container timeout as a duration.
func (s *Spec) Timeout() time.Duration { return time.Duration(s.TimeoutMS) * time.Millisecond }

// StopGrace returns the grace period between the stop signal and the kill.
func (s *Spec) StopGrace() time.Duration { return time.Duration(s.StopGraceMS) * time.Millisecond }

// Hello is the supervisor's claim of a run: written once, after it opened the
// bootstrap bundle. The host deletes the bundle when it sees it.
type Hello struct {
	V                 int    `json:"v"`
	RunID             string `json:"run_id"`
	SupervisorVersion string `json:"supervisor_version"`
	Hostname          string `json:"hostname"`
	Arch              string `json:"arch"`
	// StartedAt is when the supervisor process started; BootMS is the time
	// from process start to hello.
	StartedAt time.Time `json:"started_at"`
	BootMS    int64     `json:"boot_ms"`
	Time      time.Time `json:"time"`
}

// Phase names used in Status, phase events and Result.
const (
	PhaseBootstrap = "bootstrap" // fetch and open the bundle, write hello
	PhaseSpec      = "spec"      // read and check the spec
	PhaseWorkspace = "workspace" // download and unpack the workspace
	PhaseImage     = "image"     // find (or pull) the image
	PhaseCreate    = "create"    // create the container
	PhaseStart     = "start"     // start the container
	PhaseRunning   = "running"   // the agent runs
	PhaseFlush     = "flush"     // logs and outbox drained after exit
	PhaseDone      = "done"      // result written (status only)
)

// Status is the heartbeat: one small object the supervisor rewrites on every
// heartbeat and whenever new events are durable. One GET tells the host the
// newest event sequence, so it fetches only new events and never lists.
type Status struct {
	V     int    `json:"v"`
	RunID string `json:"run_id"`
	Phase string `json:"phase"`
	// LastEvent is the highest event sequence that is durable (0: none).
	LastEvent int64 `json:"last_event"`
	// InboxNext is the next inbox sequence the supervisor will read.
	InboxNext int64 `json:"inbox_next"`
	// BlobNext is the next blob sequence the supervisor will write: a host
	// that hands out presigned URLs signs blobs from there (and events from
	// LastEvent+1).
	BlobNext int64     `json:"blob_next,omitempty"`
	Beat     int64     `json:"beat"`
	Time     time.Time `json:"time"`
}

// Event types.
const (
	EventPhase   = "phase"   // a phase ended; Phase is set
	EventLog     = "log"     // a chunk of stdout or stderr; Log is set
	EventOutbox  = "outbox"  // an outbox file is durable as a blob; Outbox is set
	EventMessage = "message" // an inbox message was delivered; Message is set
	EventNotice  = "notice"  // something the user should know; Notice is set
)

// Event is one entry of a run's ordered event stream, at Event(Seq).
type Event struct {
	V       int          `json:"v"`
	Seq     int64        `json:"seq"`
	Time    time.Time    `json:"time"`
	Type    string       `json:"type"`
	Phase   *PhaseTiming `json:"phase,omitempty"`
	Log     *LogChunk    `json:"log,omitempty"`
	Outbox  *OutboxFile  `json:"outbox,omitempty"`
	Message *MessageAck  `json:"message,omitempty"`
	Notice  *Notice      `json:"notice,omitempty"`
}

// PhaseTiming is one phase and how long it took.
type PhaseTiming struct {
	Name       string `json:"name"`
	DurationMS int64  `json:"duration_ms"`
}

// Log streams.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
)

// LogChunk carries a piece of one output stream. Offset is the byte offset of
// Data in that stream, so a reader can check that nothing is missing.
type LogChunk struct {
	Stream string `json:"stream"`
	Offset int64  `json:"offset"`
	Data   []byte `json:"data"`
}

// OutboxFile describes a file the agent put in its outbox. Its bytes are at
// Blob(BlobSeq). A later event with the same Name replaces the file.
type OutboxFile struct {
	Name    string `json:"name"`
	BlobSeq int64  `json:"blob_seq"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
}

// MessageAck says inbox message Seq was delivered into the container.
type MessageAck struct {
	Seq  int64  `json:"seq"`
	Type string `json:"type"`
}

// Notice levels.
const (
	NoticeInfo    = "info"
	NoticeWarning = "warning"
)

// Notice is a plain-words message for the user, such as a refused outbox file.
type Notice struct {
	Level string `json:"level"`
	Text  string `json:"text"`
}

// Inbox message types.
const (
	// MessageFollowUp is delivered into the container's inbox as a file.
	MessageFollowUp = "follow_up"
	// MessageCancel stops the container (signal, grace, kill); the result
	// says cancelled.
	MessageCancel = "cancel"
	// MessageRefill renews the VM's store access: a fresh URL book
	// (presigned access mode) or fresh temporary credentials (sts).
	MessageRefill = "refill"
)

// Message is one inbox entry written by the host at Inbox(Seq).
type Message struct {
	V    int       `json:"v"`
	Seq  int64     `json:"seq"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	// Text is the body of a follow-up.
	Text string `json:"text,omitempty"`
	// Data is an optional JSON body of a follow-up.
	Data json.RawMessage `json:"data,omitempty"`
	// Book is the new URL book of a refill.
	Book *URLBook `json:"book,omitempty"`
	// Credentials are the new temporary credentials of a refill (sts).
	Credentials *SessionCredentials `json:"credentials,omitempty"`
}

// Result is the outcome of a run, written last by the supervisor: when it
// exists, every event and blob it refers to exists.
type Result struct {
	V     int    `json:"v"`
	RunID string `json:"run_id"`
	// ExitCode is the agent's exit code, or -1 when it never ran to an exit.
	ExitCode  int  `json:"exit_code"`
	OOMKilled bool `json:"oom_killed"`
	TimedOut  bool `json:"timed_out"`
	Cancelled bool `json:"cancelled"`
	// DeadlineExceeded is set when the VM deadline stopped the run.
	DeadlineExceeded bool `json:"deadline_exceeded"`
	// Error says in plain words what went wrong, if anything did besides
	// the agent's own exit code.
	Error     string        `json:"error,omitempty"`
	Phases    []PhaseTiming `json:"phases"`
	Outbox    []OutboxFile  `json:"outbox"`
	LastEvent int64         `json:"last_event"`
	StartedAt time.Time     `json:"started_at"`
	EndedAt   time.Time     `json:"ended_at"`
}

// Succeeded reports whether the agent ran and exited 0 with no error.
func (r *Result) Succeeded() bool {
	return r.ExitCode == 0 && r.Error == "" && !r.TimedOut && !r.Cancelled && !r.OOMKilled && !r.DeadlineExceeded
}
