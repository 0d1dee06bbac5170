package trust

import (
	"sync"
	"time"
)

// Limiter caps attempts per source address with a token bucket: Burst
// attempts at once, then Rate per second. It holds a bucket per source
// seen recently; full buckets are dropped when the map grows.
type Limiter struct {
	Rate  float64 // attempts per second refilled
	Burst float64

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// pruneAt is the number of sources above which Allow drops full buckets:
// a bounded map however many addresses try.
const pruneAt = 4096

// Allow takes one attempt from source's bucket at now. When none is left
// it returns false and how long until one is.
func (l *Limiter) Allow(source string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[string]*bucket{}
	}
	if len(l.buckets) >= pruneAt {
		for k, b := range l.buckets {
			if b.level(now, l.Rate, l.Burst) >= l.Burst {
				delete(l.buckets, k)
			}
		}
	}
	b := l.buckets[source]
	if b == nil {
		b = &bucket{tokens: l.Burst, last: now}
		l.buckets[source] = b
	}
	b.tokens = b.level(now, l.Rate, l.Burst)
	b.last = now
	if b.tokens < 1 {
		wait := time.Duration((1 - b.tokens) / l.Rate * float64(time.Second))
		return false, wait
	}
	b.tokens--
	return true, 0
}

// level is the bucket's content at now.
func (b *bucket) level(now time.Time, rate, burst float64) float64 {
	t := b.tokens
	if el := now.Sub(b.last); el > 0 {
		t += el.Seconds() * rate
	}
	return min(t, burst)
}
