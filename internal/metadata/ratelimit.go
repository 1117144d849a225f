package metadata

import (
	"net/netip"
	"sync"
	"time"
)

// limiter is a token bucket per source address, bounded in memory: when
// it tracks max sources it forgets the ones whose buckets have refilled
// (they have been quiet), and if none has, refuses unknown sources until
// one does rather than growing.
type limiter struct {
	burst float64
	rate  float64 // tokens per second
	max   int
	now   func() time.Time

	mu      sync.Mutex // protects buckets
	buckets map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(burst int, perSecond float64, max int, now func() time.Time) *limiter {
	return &limiter{burst: float64(burst), rate: perSecond, max: max, now: now, buckets: map[netip.Addr]*bucket{}}
}

func (l *limiter) allow(src netip.Addr) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[src]
	if !ok {
		if len(l.buckets) >= l.max && !l.sweepLocked(now) {
			return false
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[src] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweepLocked drops full buckets and reports whether any went.
func (l *limiter) sweepLocked(now time.Time) bool {
	n := len(l.buckets)
	for a, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, a)
		}
	}
	return len(l.buckets) < n
}
