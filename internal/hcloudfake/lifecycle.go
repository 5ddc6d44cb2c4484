package hcloudfake

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

// state is everything the fake stores; guarded by Server.mu.
type state struct {
	servers  map[int64]*vm // visible through the API
	deleting map[int64]*vm // deleted, delete action still running
	actions  map[int64]*action
	sshKeys  map[int64]*schema.SSHKey
	nextID   map[string]int64
}

func newState() state {
	return state{
		servers:  map[int64]*vm{},
		deleting: map[int64]*vm{},
		actions:  map[int64]*action{},
		sshKeys:  map[int64]*schema.SSHKey{},
		nextID:   map[string]int64{"server": 4711000, "action": 9000000, "ssh_key": 1200},
	}
}

func (st *state) newID(kind string) int64 {
	st.nextID[kind]++
	return st.nextID[kind]
}

// vm is one server and its (optional) booted stand-in.
type vm struct {
	id         int64
	name       string
	status     string
	created    time.Time
	serverType *serverTypeSpec
	location   *schema.Location
	image      *imageSpec
	labels     map[string]string
	userData   string
	startAfter bool

	bootDone chan struct{} // closed when the boot hook has returned
	bootErr  error
	stop     func()
	stopOnce sync.Once
	stopped  chan struct{} // closed when stop has returned, after a delete
}

func (v *vm) ipv4() string { return fmt.Sprintf("203.0.113.%d", v.id%254+1) }

func (v *vm) booted() BootedServer {
	return BootedServer{
		ID: v.id, Name: v.name, Labels: maps.Clone(v.labels), UserData: v.userData,
		ServerType: v.serverType.name, Location: v.location.Name, Image: v.image.name,
		PublicIPv4: v.ipv4(),
	}
}

// action is an action and what it waits for before it finishes.
type action struct {
	wire     schema.Action
	readyAt  time.Time
	gate     <-chan struct{} // nil, or closed when the work is done
	cause    func() error    // consulted once done: non-nil fails the action
	onFinish func(failed bool)
}

func (s *Server) newAction(command, resType string, resID int64, a action) *action {
	now := s.now()
	a.wire = schema.Action{
		ID: s.state.newID("action"), Command: command, Status: "running", Started: now,
		Resources: []schema.ActionResourceReference{{ID: resID, Type: resType}},
	}
	a.readyAt = now.Add(s.cfg.actionDelay)
	s.state.actions[a.wire.ID] = &a
	return &a
}

// settle brings every running action up to date: an action finishes once
// its delay has passed and what it waits for is done. Called with s.mu held
// before anything is read, so state advances lazily and deterministically.
func (s *Server) settle() {
	now := s.now()
	for _, id := range slices.Sorted(maps.Keys(s.state.actions)) {
		a := s.state.actions[id]
		if a.wire.Status == "running" {
			a.advance(now)
		}
	}
}

func (a *action) advance(now time.Time) {
	if now.Before(a.readyAt) || !closed(a.gate) {
		total := a.readyAt.Sub(a.wire.Started)
		if total > 0 {
			a.wire.Progress = min(99, int(100*now.Sub(a.wire.Started)/total))
		}
		return
	}
	a.wire.Progress = 100
	a.wire.Finished = &now
	a.wire.Status = "success"
	var err error
	if a.cause != nil {
		err = a.cause()
	}
	if err != nil {
		a.wire.Status = "error"
		a.wire.Error = &schema.ActionError{Code: "action_failed", Message: err.Error()}
	}
	if a.onFinish != nil {
		a.onFinish(err != nil)
	}
}

func closed(c <-chan struct{}) bool {
	if c == nil {
		return true
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

var errInjected = errors.New("action failed (injected)")

// startCreate starts the create_server and start_server actions of a new
// server and its boot hook.
func (s *Server) startCreate(v *vm) (create, start *action) {
	fail := s.faults.takeActionFailure()
	create = s.newAction("create_server", "server", v.id, action{
		gate:  v.bootDone,
		cause: func() error { return causeOf(fail, v.bootErr) },
		onFinish: func(failed bool) {
			switch {
			case failed || !v.startAfter:
				v.status = "off"
			default:
				v.status = "running"
			}
		},
	})
	if v.startAfter {
		start = s.newAction("start_server", "server", v.id, action{
			gate:  v.bootDone,
			cause: func() error { return causeOf(fail, v.bootErr) },
		})
	}
	s.boot(v)
	return create, start
}

func causeOf(injected bool, err error) error {
	if injected {
		return errInjected
	}
	if err != nil {
		return fmt.Errorf("boot failed: %w", err)
	}
	return nil
}

// boot runs the boot hook for v on its own goroutine.
func (s *Server) boot(v *vm) {
	if s.cfg.bootHook == nil {
		close(v.bootDone)
		return
	}
	hook, info := s.cfg.bootHook, v.booted()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		stop, err := hook(s.ctx, info)
		s.mu.Lock()
		v.stop, v.bootErr = stop, err
		s.mu.Unlock()
		close(v.bootDone)
	}()
}

// startDelete removes v from the API at once, as the real API does, and
// starts its delete_server action, which ends once v's stand-in has been
// stopped. With an injected action failure, v stays and the action fails.
func (s *Server) startDelete(v *vm) *action {
	if s.faults.takeActionFailure() {
		return s.newAction("delete_server", "server", v.id, action{
			cause: func() error { return errInjected },
		})
	}
	delete(s.state.servers, v.id)
	s.state.deleting[v.id] = v
	v.status = "deleting"
	a := s.newAction("delete_server", "server", v.id, action{
		gate:     v.stopped,
		onFinish: func(bool) { delete(s.state.deleting, v.id) },
	})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.teardown(v)
		close(v.stopped)
	}()
	return a
}

// teardown waits for v's boot hook and calls its stop func once.
func (s *Server) teardown(v *vm) {
	<-v.bootDone
	s.mu.Lock()
	stop := v.stop
	s.mu.Unlock()
	if stop != nil {
		v.stopOnce.Do(stop)
	}
}

// stopAll stops, at Close, every server whose stand-in is still up.
func (s *Server) stopAll() {
	s.mu.Lock()
	var all []*vm
	for _, m := range []map[int64]*vm{s.state.servers, s.state.deleting} {
		for _, v := range m {
			all = append(all, v)
		}
	}
	s.mu.Unlock()
	for _, v := range all {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.teardown(v)
		}()
	}
}
