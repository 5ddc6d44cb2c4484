package hcloudfake

import (
	"math"
	"net/http"
	"strconv"
	"time"
)

// bucket is the API's rate limit: a budget of limit requests that refills
// gradually, limit requests per period (3600 an hour, one a second, by default).
type bucket struct {
	limit  int
	per    time.Duration
	tokens float64
	last   time.Time
}

func newBucket(limit int, per time.Duration, now time.Time) bucket {
	return bucket{limit: limit, per: per, tokens: float64(limit), last: now}
}

// rate is the refill in requests per second.
func (b *bucket) rate() float64 { return float64(b.limit) / b.per.Seconds() }

func (b *bucket) refill(now time.Time) {
	if now.After(b.last) {
		b.tokens = math.Min(float64(b.limit), b.tokens+now.Sub(b.last).Seconds()*b.rate())
		b.last = now
	}
}

// take spends one request of the budget; false when it is used up.
func (b *bucket) take(now time.Time) bool {
	b.refill(now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// setHeaders writes the RateLimit-* headers the real API sends on every
// response: the hourly limit, what remains, and when the budget is full again.
func (b *bucket) setHeaders(h http.Header, now time.Time) {
	missing := float64(b.limit) - b.tokens
	reset := now.Add(time.Duration(math.Ceil(missing/b.rate())) * time.Second)
	h.Set("RateLimit-Limit", strconv.Itoa(b.limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(int(math.Floor(b.tokens))))
	h.Set("RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
}

// drained is a copy of the budget with nothing left, for the headers of an
// injected 429.
func (b *bucket) drained() bucket {
	c := *b
	c.tokens = 0
	return c
}
