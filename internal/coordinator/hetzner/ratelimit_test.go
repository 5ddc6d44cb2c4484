package hetzner

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// budgetServer answers like Hetzner's rate limiter: a bucket of limit
// requests refilled at limit per hour, 429 when empty.
type budgetServer struct {
	mu        sync.Mutex
	limit     int
	remaining float64
	last      time.Time
	tooMany   atomic.Int64
}

func (b *budgetServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	now := time.Now()
	b.remaining = min(float64(b.limit), b.remaining+now.Sub(b.last).Hours()*float64(b.limit))
	b.last = now
	ok := b.remaining >= 1
	if ok {
		b.remaining--
	}
	rem := int(b.remaining)
	b.mu.Unlock()
	w.Header().Set("RateLimit-Limit", strconv.Itoa(b.limit))
	w.Header().Set("RateLimit-Remaining", strconv.Itoa(rem))
	w.Header().Set("RateLimit-Reset", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))
	if !ok {
		b.tooMany.Add(1)
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte(`{"error":{"code":"rate_limit_exceeded","message":"limit reached"}}`))
		return
	}
	w.Write([]byte(`{}`))
}

// TestLimiterSharesOneBudget: concurrent callers through one limiter never
// see a 429, however small the budget; the limiter spaces them out.
func TestLimiterSharesOneBudget(t *testing.T) {
	// 36000 per hour = 10 per second, with a bucket of only 3.
	bs := &budgetServer{limit: 36000, remaining: 3, last: time.Now()}
	srv := httptest.NewServer(bs)
	defer srv.Close()
	lim := newLimiter(nil)
	c := &http.Client{Transport: lim}
	var wg sync.WaitGroup
	var seen429 atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				resp, err := c.Get(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				if resp.StatusCode == http.StatusTooManyRequests {
					seen429.Add(1)
				}
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if n := seen429.Load(); n != 0 {
		t.Errorf("callers saw %d answers 429, want none", n)
	}
	// The server's bucket holds 3 but refills only 10 per second; requests
	// beyond the budget had to wait for it rather than be refused.
	if got := lim.Requests(); got < 20 {
		t.Errorf("limiter sent %d requests, want at least the 20 asked for", got)
	}
}
