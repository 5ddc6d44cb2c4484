package hetzner

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// limiter is an http.RoundTripper that shares one Hetzner API budget
// between every run of a coordinator. It tracks RateLimit-Remaining and
// RateLimit-Reset from each answer, spaces requests out when the budget is
// spent (Hetzner refills it steadily: limit per hour), and waits out a 429
// itself, so no caller ever sees rate_limit_exceeded.
type limiter struct {
	base http.RoundTripper
	// maxWait bounds one request's total wait for the budget.
	maxWait time.Duration

	mu        sync.Mutex
	limit     int       // requests per hour; 0 until known
	remaining int       // as of the last answer, minus requests sent since
	known     bool      // remaining comes from an answer
	next      time.Time // earliest send time while the budget is spent
	requests  int64     // requests sent (including retries of a 429)
}

func newLimiter(base http.RoundTripper) *limiter {
	if base == nil {
		base = http.DefaultTransport
	}
	return &limiter{base: base, maxWait: 10 * time.Minute}
}

// interval is the time in which one request of budget refills.
func (l *limiter) interval() time.Duration {
	if l.limit <= 0 {
		return time.Second // Hetzner's default: 3600 per hour
	}
	return time.Hour / time.Duration(l.limit)
}

// reserve takes one request of budget and says how long to wait for it.
func (l *limiter) reserve(now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests++
	if !l.known || l.remaining > 0 {
		l.remaining--
		return 0
	}
	if l.next.Before(now) {
		l.next = now
	}
	l.next = l.next.Add(l.interval())
	return l.next.Sub(now)
}

// observe updates the budget from an answer's headers.
func (l *limiter) observe(h http.Header) {
	lim, err1 := strconv.Atoi(h.Get("RateLimit-Limit"))
	rem, err2 := strconv.Atoi(h.Get("RateLimit-Remaining"))
	if err2 != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err1 == nil && lim > 0 {
		l.limit = lim
	}
	l.remaining, l.known = rem, true
}

// exhausted records a 429: nothing is left until one request refills.
func (l *limiter) exhausted() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.remaining, l.known = 0, true
}

// Requests returns how many HTTP requests were sent.
func (l *limiter) Requests() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.requests
}

func (l *limiter) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	deadline := time.Now().Add(l.maxWait)
	for {
		if err := sleep(ctx, l.reserve(time.Now())); err != nil {
			return nil, err
		}
		r := req
		if req.Body != nil && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r = req.Clone(ctx)
			r.Body = body
		}
		resp, err := l.base.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		l.observe(resp.Header)
		if resp.StatusCode != http.StatusTooManyRequests {
			return resp, nil
		}
		l.exhausted()
		if time.Now().After(deadline) || (req.Body != nil && req.GetBody == nil) {
			return resp, nil // give up: the caller sees the 429
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("waiting for the Hetzner API rate limit: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}
