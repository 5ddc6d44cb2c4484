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
// between every run of a coordinator. It tracks RateLimit-Limit,
// RateLimit-Remaining and RateLimit-Reset from each answer, spaces requests
// out when the budget is spent (Hetzner refills it steadily, so that it is
// full again at Reset), and waits out a 429 itself, so no caller ever sees
// rate_limit_exceeded. Its waits are not part of a request's timeout: each
// attempt gets its own.
type limiter struct {
	base http.RoundTripper
	// maxWait bounds one request's total wait for the budget.
	maxWait time.Duration
	// attemptTimeout bounds one HTTP exchange.
	attemptTimeout time.Duration

	mu        sync.Mutex
	refill    time.Duration // time for one request to refill
	remaining int           // as of the last answer, minus requests sent since
	known     bool          // remaining comes from an answer
	next      time.Time     // earliest send time while the budget is spent
	requests  int64         // requests sent (including retries of a 429)
	byRun     map[string]int64
}

type runKey struct{}

// withRun tags ctx so that the requests made under it count for runID.
func withRun(ctx context.Context, runID string) context.Context {
	return context.WithValue(ctx, runKey{}, runID)
}

func newLimiter(base http.RoundTripper) *limiter {
	if base == nil {
		base = http.DefaultTransport
	}
	return &limiter{base: base, maxWait: 10 * time.Minute, attemptTimeout: 30 * time.Second, refill: time.Second}
}

// interval is the time in which one request of budget refills: Hetzner's
// default is 3600 an hour, one a second, until an answer says otherwise.
func (l *limiter) interval() time.Duration { return l.refill }

// reserve takes one request of budget and says how long to wait for it.
func (l *limiter) reserve(ctx context.Context, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests++
	if run, ok := ctx.Value(runKey{}).(string); ok {
		if l.byRun == nil {
			l.byRun = map[string]int64{}
		}
		l.byRun[run]++
	}
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

// observe updates the budget from an answer's headers: the budget refills
// linearly, full (Limit) at Reset, which gives the refill rate.
func (l *limiter) observe(h http.Header, now time.Time) {
	lim, err1 := strconv.Atoi(h.Get("RateLimit-Limit"))
	rem, err2 := strconv.Atoi(h.Get("RateLimit-Remaining"))
	reset, err3 := strconv.ParseInt(h.Get("RateLimit-Reset"), 10, 64)
	if err2 != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.remaining, l.known = rem, true
	if err1 == nil && err3 == nil && lim > rem {
		if until := time.Unix(reset, 0).Sub(now); until > 0 {
			l.refill = max(until/time.Duration(lim-rem), 10*time.Millisecond)
		}
	}
}

// exhausted records a 429: nothing is left until one request refills.
func (l *limiter) exhausted() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.remaining, l.known = 0, true
}

// RequestsFor returns how many HTTP requests were sent for runID.
func (l *limiter) RequestsFor(runID string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byRun[runID]
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
		if err := sleep(ctx, l.reserve(ctx, time.Now())); err != nil {
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
		resp, err := l.attempt(r)
		if err != nil {
			return nil, err
		}
		l.observe(resp.Header, time.Now())
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

// attempt sends one request with its own timeout; the body's reader
// cancels the timeout when the caller closes it.
func (l *limiter) attempt(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(r.Context(), l.attemptTimeout)
	resp, err := l.base.RoundTrip(r.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
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
