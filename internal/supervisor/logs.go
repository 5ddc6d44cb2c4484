package supervisor

import (
	"context"
	"sync"
	"time"

	"github.com/sortie/sortie/pkg/protocol"
)

// logStream turns one output stream of the container into ordered log
// events: a chunk goes out when it reaches maxChunk bytes or when it has
// waited maxAge, whichever comes first.
type logStream struct {
	mb       *mailbox
	stream   string
	maxChunk int

	mu     sync.Mutex
	buf    []byte
	offset int64 // stream offset of buf[0]
}

func newLogStream(mb *mailbox, stream string, maxChunk int) *logStream {
	return &logStream{mb: mb, stream: stream, maxChunk: maxChunk}
}

// Write implements io.Writer; it never fails.
func (l *logStream) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for len(l.buf) >= l.maxChunk {
		l.emitLocked(l.maxChunk)
	}
	return len(p), nil
}

// flush emits whatever is buffered.
func (l *logStream) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emitLocked(len(l.buf))
	}
}

func (l *logStream) emitLocked(n int) {
	data := append([]byte(nil), l.buf[:n]...)
	l.mb.emit(protocol.Event{Type: protocol.EventLog, Log: &protocol.LogChunk{
		Stream: l.stream, Offset: l.offset, Data: data,
	}})
	l.offset += int64(n)
	l.buf = append(l.buf[:0], l.buf[n:]...)
}

// flushEvery flushes the streams every d until ctx ends.
func flushEvery(ctx context.Context, d time.Duration, streams ...*logStream) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, s := range streams {
				s.flush()
			}
		}
	}
}
