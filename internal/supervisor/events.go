package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/sortie/sortie/pkg/protocol"
)

// mailbox is the supervisor's side of the run's mailbox: it numbers events,
// writes them in order, and keeps the status object current. Events become
// visible to the host only when the status names them, so the host never
// reads a sequence that is not yet durable.
type mailbox struct {
	store protocol.Store
	keys  protocol.RunKeys
	runID string
	log   *slog.Logger
	now   func() time.Time

	mu        sync.Mutex
	nextSeq   int64
	pending   []protocol.Event
	durable   int64 // highest event seq written
	phase     string
	inboxNext int64
	blobNext  int64
	beat      int64
	lastBeat  time.Time
	wake      chan struct{}

	writeMu sync.Mutex // one flush at a time, so events land in order
}

func newMailbox(store protocol.Store, keys protocol.RunKeys, runID string, log *slog.Logger) *mailbox {
	return &mailbox{
		store: store, keys: keys, runID: runID, log: log, now: time.Now,
		nextSeq: 1, inboxNext: 1, wake: make(chan struct{}, 1),
	}
}

// emit queues an event and returns its sequence number.
func (m *mailbox) emit(ev protocol.Event) int64 {
	m.mu.Lock()
	ev.V = protocol.Version
	ev.Seq = m.nextSeq
	if ev.Time.IsZero() {
		ev.Time = m.now().UTC()
	}
	m.nextSeq++
	m.pending = append(m.pending, ev)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
	return ev.Seq
}

func (m *mailbox) setPhase(p string) {
	m.mu.Lock()
	m.phase = p
	m.mu.Unlock()
}

func (m *mailbox) setBlobNext(n int64) {
	m.mu.Lock()
	m.blobNext = n
	m.mu.Unlock()
}

func (m *mailbox) setInboxNext(n int64) {
	m.mu.Lock()
	m.inboxNext = n
	m.mu.Unlock()
}

// flush writes every queued event, in order, then the status. On error the
// unwritten events stay queued and the next flush retries them: a retried
// write rewrites the same key with the same bytes.
func (m *mailbox) flush(ctx context.Context) error {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	m.mu.Lock()
	batch := m.pending
	m.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	for i, ev := range batch {
		if err := protocol.PutJSON(ctx, m.store, m.keys.Event(ev.Seq), &ev); err != nil {
			m.dropWritten(batch[:i])
			return err
		}
	}
	m.dropWritten(batch)
	return m.writeStatus(ctx)
}

func (m *mailbox) dropWritten(done []protocol.Event) {
	if len(done) == 0 {
		return
	}
	m.mu.Lock()
	m.pending = m.pending[len(done):]
	m.durable = done[len(done)-1].Seq
	m.mu.Unlock()
}

// writeStatus rewrites the status object: the heartbeat.
func (m *mailbox) writeStatus(ctx context.Context) error {
	m.mu.Lock()
	m.beat++
	st := protocol.Status{
		V: protocol.Version, RunID: m.runID, Phase: m.phase, LastEvent: m.durable,
		InboxNext: m.inboxNext, BlobNext: m.blobNext, Beat: m.beat, Time: m.now().UTC(),
	}
	m.lastBeat = m.now()
	m.mu.Unlock()
	return protocol.PutJSON(ctx, m.store, m.keys.Status(), &st)
}

// loop flushes events as they come (coalescing those that arrive within
// batchDelay) and rewrites the status at least every heartbeat, until ctx
// ends. Write errors are logged and retried: nothing queued is dropped.
func (m *mailbox) loop(ctx context.Context, batchDelay, heartbeat time.Duration) {
	t := time.NewTicker(heartbeat / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
			if batchDelay > 0 {
				select {
				case <-time.After(batchDelay):
				case <-ctx.Done():
					return
				}
			}
			if err := m.flush(ctx); err != nil && ctx.Err() == nil {
				if errors.Is(err, errNoURL) {
					// Tell the host where to sign from.
					_ = m.writeStatus(ctx)
					m.log.Debug("events wait for a URL refill", "err", err)
				} else {
					m.log.Warn("event write failed; will retry", "err", err)
				}
				m.rewake(time.Second)
			}
		case <-t.C:
			m.mu.Lock()
			due := m.now().Sub(m.lastBeat) >= heartbeat
			m.mu.Unlock()
			if due {
				if err := m.writeStatus(ctx); err != nil && ctx.Err() == nil {
					m.log.Warn("heartbeat failed", "err", err)
				}
			}
		}
	}
}

func (m *mailbox) rewake(after time.Duration) {
	time.AfterFunc(after, func() {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	})
}

// phaseTimer records phases for events and the result.
type phaseTimer struct {
	mb     *mailbox
	mu     sync.Mutex
	phases []protocol.PhaseTiming
	cur    string
	start  time.Time
}

// begin ends the current phase (emitting its event) and starts the next.
func (p *phaseTimer) begin(name string) {
	p.end()
	p.mu.Lock()
	p.cur, p.start = name, time.Now()
	p.mu.Unlock()
	p.mb.setPhase(name)
}

// end closes the current phase, if any.
func (p *phaseTimer) end() {
	p.mu.Lock()
	if p.cur == "" {
		p.mu.Unlock()
		return
	}
	pt := protocol.PhaseTiming{Name: p.cur, DurationMS: time.Since(p.start).Milliseconds()}
	p.phases = append(p.phases, pt)
	p.cur = ""
	p.mu.Unlock()
	p.mb.emit(protocol.Event{Type: protocol.EventPhase, Phase: &pt})
}

// add records a phase measured elsewhere (the boot, before the mailbox existed).
func (p *phaseTimer) add(name string, d time.Duration) {
	pt := protocol.PhaseTiming{Name: name, DurationMS: d.Milliseconds()}
	p.mu.Lock()
	p.phases = append(p.phases, pt)
	p.mu.Unlock()
	p.mb.emit(protocol.Event{Type: protocol.EventPhase, Phase: &pt})
}

func (p *phaseTimer) all() []protocol.PhaseTiming {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]protocol.PhaseTiming(nil), p.phases...)
}
