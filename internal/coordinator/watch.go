package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sortie/sortie/pkg/protocol"
)

// Gone is implemented by providers that can tell cheaply that a VM has
// stopped existing (the local provider: its process exited).
type Gone interface {
	Gone(vm *VM) bool
}

// watch follows the run from the VM request to the result: it waits for the
// hello, then polls the status object and fetches only new events, backing
// off while nothing changes. It never lists.
func (r *Run) watch() {
	ctx := context.Background()
	res, err := r.follow(ctx)
	r.finish(res, err)
}

func (r *Run) follow(ctx context.Context) (*protocol.Result, error) {
	cfg := &r.c.cfg
	st := r.polls
	// Poll at PollMin after progress, backing off by half each idle poll
	// up to PollMax.
	interval := cfg.PollMin
	sleep := func(progress bool) {
		if progress {
			interval = cfg.PollMin
		}
		time.Sleep(interval)
		if !progress {
			interval = min(interval*3/2, cfg.PollMax)
		}
	}
	hardStop := r.deadline.Add(cfg.DeadlineGrace)
	gone, _ := cfg.Provider.(Gone)

	// Wait for the hello.
	for {
		var h protocol.Hello
		err := protocol.GetJSON(ctx, st, r.keys.Hello(), &h)
		if err == nil {
			r.phase(PhaseVMBoot, time.Since(r.createdAt))
			if err := st.Delete(ctx, r.keys.Bootstrap()); err != nil {
				r.log.Warn("delete bootstrap bundle after hello", "err", err)
			}
			break
		}
		if !errors.Is(err, protocol.ErrNotFound) {
			r.log.Warn("read hello", "err", err)
		}
		if time.Since(r.createdAt) > cfg.BootTimeout {
			return nil, fmt.Errorf("phase %s: %w (%s)", PhaseVMBoot, errNoHello, cfg.BootTimeout)
		}
		if gone != nil && gone.Gone(r.vm) {
			return nil, fmt.Errorf("phase %s: the VM stopped before it said hello", PhaseVMBoot)
		}
		sleep(false)
	}

	var seen int64 // highest VM event delivered
	lastProgress := time.Now()
	for {
		var s protocol.Status
		err := protocol.GetJSON(ctx, st, r.keys.Status(), &s)
		progress := false
		switch {
		case err == nil:
			r.maybeRefill(ctx, &s)
			if s.LastEvent > seen {
				n, ferr := r.fetchEvents(ctx, seen, s.LastEvent)
				progress = n > seen
				seen = n
				if ferr != nil {
					r.log.Warn("fetch events", "err", ferr)
				}
			}
		case errors.Is(err, protocol.ErrNotFound):
		default:
			r.log.Warn("read status", "err", err)
		}
		if progress {
			lastProgress = time.Now()
		}
		// The result is the commit marker: once the status says done (or the
		// VM is gone, or nothing moved for a while) look for it.
		vmGone := gone != nil && gone.Gone(r.vm)
		if s.Phase == protocol.PhaseDone || vmGone || time.Since(lastProgress) > 30*time.Second {
			var res protocol.Result
			err := protocol.GetJSON(ctx, st, r.keys.Result(), &res)
			if err == nil {
				if res.LastEvent > seen {
					seen, err = r.fetchEvents(ctx, seen, res.LastEvent)
					if err != nil {
						return &res, fmt.Errorf("result is written but events up to %d could not be read: %w", res.LastEvent, err)
					}
				}
				return &res, nil
			}
			if vmGone && errors.Is(err, protocol.ErrNotFound) {
				return nil, errors.New("the VM is gone and left no result")
			}
			lastProgress = time.Now()
		}
		if time.Now().After(hardStop) {
			return nil, fmt.Errorf("the VM deadline %s passed without a result", r.deadline.Format(time.RFC3339))
		}
		sleep(progress)
	}
}

// requestTimeout bounds each store request of the watch loop, so a store
// that hangs cannot stall a run past its deadline checks.
const requestTimeout = 30 * time.Second

type timeoutStore struct {
	Store
	d time.Duration
}

func (t timeoutStore) Get(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	return t.Store.Get(ctx, key)
}

func (t timeoutStore) Delete(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	return t.Store.Delete(ctx, key)
}

// fetchEvents reads events from+1..to in order and handles each; it returns
// the highest sequence handled.
func (r *Run) fetchEvents(ctx context.Context, from, to int64) (int64, error) {
	for seq := from + 1; seq <= to; seq++ {
		var ev protocol.Event
		if err := protocol.GetJSON(ctx, r.polls, r.keys.Event(seq), &ev); err != nil {
			return seq - 1, err
		}
		if ev.Seq != seq {
			return seq - 1, fmt.Errorf("event at sequence %d says it is %d", seq, ev.Seq)
		}
		r.handle(ctx, ev)
	}
	return to, nil
}

func (r *Run) handle(ctx context.Context, ev protocol.Event) {
	out := Event{Event: ev, Source: SourceVM}
	if ev.Type == protocol.EventOutbox && ev.Outbox != nil && r.spec.OutboxDir != "" {
		p, err := r.saveOutbox(ctx, ev.Outbox)
		if err != nil {
			r.unsavedMu.Lock()
			r.unsaved = append(r.unsaved, err)
			r.unsavedMu.Unlock()
			r.log.Warn("outbox file not saved", "name", ev.Outbox.Name, "err", err)
			r.emit(out)
			r.emit(Event{Source: SourceCoordinator, Event: protocol.Event{
				Type: protocol.EventNotice, Notice: &protocol.Notice{Level: protocol.NoticeWarning, Text: err.Error()},
			}})
			return
		}
		out.SavedPath = p
	}
	r.emit(out)
}
