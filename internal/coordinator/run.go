package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sortie/sortie/pkg/protocol"
)

// Event sources.
const (
	SourceCoordinator = "coordinator"
	SourceVM          = "vm"
)

// Event is one thing that happened in a run, as the host sees it: every
// event of the VM (in sequence order) plus the coordinator's own phases,
// saved outbox files and, last, the result.
type Event struct {
	protocol.Event
	RunID  string `json:"run_id"`
	Source string `json:"source"`
	// SavedPath is where an outbox file was saved, when it was.
	SavedPath string `json:"saved_path,omitempty"`
	// Result is set on the last event of a run (Type "result").
	Result *protocol.Result `json:"result,omitempty"`
}

// EventResult is the type of the last event of a run.
const EventResult = "result"

// Run is a started run.
type Run struct {
	ID string

	c         *Coordinator
	keys      protocol.RunKeys
	spec      *RunSpec
	started   time.Time
	deadline  time.Time
	createdAt time.Time
	vm        *VM
	log       *slog.Logger
	polls     timeoutStore // the store, each request bounded
	// book is the newest URL book given to the VM (presigned mode), signed
	// from bookFrom; only the watch loop touches them after Start.
	book     *protocol.URLBook
	bookFrom bookWindow
	// creds are the newest temporary credentials given to the VM (sts
	// mode); only the watch loop touches them after Start.
	creds *protocol.SessionCredentials

	qmu    sync.Mutex
	queue  []Event
	qwake  chan struct{}
	closed bool
	events chan Event

	msgMu   sync.Mutex
	nextMsg int64
	// unsent is a message whose PUT failed: it may or may not have landed,
	// so its sequence number is taken and only the same bytes may go there.
	unsent *protocol.Message

	done   chan struct{}
	result *protocol.Result
	err    error

	unsavedMu sync.Mutex
	unsaved   []error
}

// Unsaved lists the outbox files that could not be saved into OutboxDir,
// each with why. A caller that needs every file must check it: the run's
// result can still be a success.
func (r *Run) Unsaved() []error {
	r.unsavedMu.Lock()
	defer r.unsavedMu.Unlock()
	return append([]error(nil), r.unsaved...)
}

func newRun(c *Coordinator, id string, keys protocol.RunKeys, s *RunSpec, started, deadline time.Time) *Run {
	r := &Run{
		ID: id, c: c, keys: keys, spec: s, started: started, deadline: deadline,
		log: c.cfg.Logger.With("run", id), qwake: make(chan struct{}, 1),
		polls:  timeoutStore{Store: c.cfg.Store, d: requestTimeout},
		events: make(chan Event), nextMsg: 1, done: make(chan struct{}),
	}
	go r.pump()
	return r
}

// Events streams the run's events in order. The channel is closed after the
// result event (or when the run fails). Events are queued without bound, so
// a slow reader never stalls the run; a reader that stops reading loses
// nothing but memory.
func (r *Run) Events() <-chan Event { return r.events }

// Deadline is the VM's hard deadline.
func (r *Run) Deadline() time.Time { return r.deadline }

// Done is closed when the run is over and its VM is gone.
func (r *Run) Done() <-chan struct{} { return r.done }

// Wait blocks until the run is over and returns its result. The error is
// set when no result could be had (the VM never said hello, the deadline
// passed without a result); the result's own fields tell how the agent did.
func (r *Run) Wait(ctx context.Context) (*protocol.Result, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-r.done:
		return r.result, r.err
	}
}

// Send delivers a follow-up message into the agent's inbox.
func (r *Run) Send(ctx context.Context, text string) (int64, error) {
	return r.send(ctx, protocol.Message{Type: protocol.MessageFollowUp, Text: text})
}

// Cancel asks the supervisor to stop the agent (signal, grace, kill); the
// result then says cancelled.
func (r *Run) Cancel(ctx context.Context) error {
	_, err := r.send(ctx, protocol.Message{Type: protocol.MessageCancel})
	return err
}

// Abandon deletes the run's VM at once, without waiting for a result: the
// last resort of a caller that cannot wait (a second Ctrl-C).
func (r *Run) Abandon(ctx context.Context) error {
	if err := r.c.cfg.Provider.Delete(ctx, r.vm); err != nil {
		return fmt.Errorf("delete VM %s: %w", r.vm.Name, err)
	}
	return nil
}

func (r *Run) send(ctx context.Context, m protocol.Message) (int64, error) {
	select {
	case <-r.done:
		return 0, fmt.Errorf("run %s is over", r.ID)
	default:
	}
	r.msgMu.Lock()
	defer r.msgMu.Unlock()
	// Inbox keys are read in sequence: a failed write is retried with the
	// same bytes before anything else is sent, so the VM never waits at a
	// gap and no acknowledged message is overwritten.
	if u := r.unsent; u != nil {
		if err := protocol.PutJSON(ctx, r.c.cfg.Store, r.keys.Inbox(u.Seq), u); err != nil {
			return 0, fmt.Errorf("resend %s message %d (sent before this one): %w", u.Type, u.Seq, err)
		}
		r.unsent = nil
		r.nextMsg++
	}
	m.V, m.Seq, m.Time = protocol.Version, r.nextMsg, time.Now().UTC()
	if err := protocol.PutJSON(ctx, r.c.cfg.Store, r.keys.Inbox(m.Seq), &m); err != nil {
		r.unsent = &m
		return 0, fmt.Errorf("send %s message: %w (it is sent again before the next message)", m.Type, err)
	}
	r.nextMsg++
	return m.Seq, nil
}

// emit queues an event for the caller.
func (r *Run) emit(ev Event) {
	ev.RunID = r.ID
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	r.qmu.Lock()
	r.queue = append(r.queue, ev)
	r.qmu.Unlock()
	select {
	case r.qwake <- struct{}{}:
	default:
	}
}

func (r *Run) phase(name string, d time.Duration) {
	r.emit(Event{Source: SourceCoordinator, Event: protocol.Event{
		Type: protocol.EventPhase, Phase: &protocol.PhaseTiming{Name: name, DurationMS: d.Milliseconds()},
	}})
}

func (r *Run) closeEvents() {
	r.qmu.Lock()
	r.closed = true
	r.qmu.Unlock()
	select {
	case r.qwake <- struct{}{}:
	default:
	}
}

// pump moves queued events to the unbuffered channel.
func (r *Run) pump() {
	defer close(r.events)
	for {
		r.qmu.Lock()
		if len(r.queue) == 0 {
			closed := r.closed
			r.qmu.Unlock()
			if closed {
				return
			}
			<-r.qwake
			continue
		}
		ev := r.queue[0]
		r.queue = r.queue[1:]
		r.qmu.Unlock()
		r.events <- ev
	}
}

// finish records the outcome, makes sure the VM is gone and closes the run.
func (r *Run) finish(res *protocol.Result, err error) {
	dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if derr := r.c.cfg.Provider.Delete(dctx, r.vm); derr != nil {
		r.log.Error("delete VM; the reaper (or, for local VMs, the next start) will retry", "vm", r.vm.Name, "err", derr)
		err = errors.Join(err, fmt.Errorf("delete VM %s: %w", r.vm.Name, derr))
	}
	// The bundle is worthless after the hello, but never leave it around.
	if derr := r.c.cfg.Store.Delete(dctx, r.keys.Bootstrap()); derr != nil {
		r.log.Warn("delete bootstrap bundle", "err", derr)
	}
	r.result, r.err = res, err
	if res != nil {
		r.emit(Event{Source: SourceVM, Event: protocol.Event{V: protocol.Version, Type: EventResult, Time: res.EndedAt}, Result: res})
	}
	r.closeEvents()
	close(r.done)
}
