package agent

import (
	"context"
	"sync"
	"time"

	"novanet/internal/model"
)

// maxPendingLeases bounds the events kept while the API is unreachable;
// older ones are dropped first since a later event for the same address
// supersedes them and dnsmasq repeats "old" events on renewal anyway.
const maxPendingLeases = 4096

// LeaseHandler receives dnsmasq's script events through the local socket
// and forwards them to the API. It never blocks dnsmasq on the API: events
// the API cannot take now are queued and retried.
type LeaseHandler struct {
	a       *Agent
	pending chan model.LeaseEvent

	mu sync.Mutex
	// delivered holds the leases (mac|ip) the API has recorded as leased.
	// With --leasefile-ro dnsmasq reports every renewal as "old": at 5,000
	// VMs and 120 s leases that is ~80 events a second, and none of them
	// changes the store once the lease is recorded.
	delivered map[string]bool
}

// Leases returns the handler for the dhcpbridge socket; Run its Forward
// loop alongside the agent.
func (a *Agent) Leases() *LeaseHandler {
	return &LeaseHandler{a: a, pending: make(chan model.LeaseEvent, maxPendingLeases), delivered: map[string]bool{}}
}

// HandleLease queues one event for the API.
func (h *LeaseHandler) HandleLease(ctx context.Context, ev model.LeaseEvent) error {
	ev.Host = h.a.cfg.Host
	if ev.Action == model.LeaseDel {
		// Forget it now, not once the del is delivered: an "old" right
		// behind it (a dnsmasq restart) must reach the API too.
		h.mu.Lock()
		delete(h.delivered, leaseKey(ev))
		h.mu.Unlock()
	}
	if ev.Action == model.LeaseOld {
		h.mu.Lock()
		known := h.delivered[leaseKey(ev)]
		h.mu.Unlock()
		if known {
			return nil // a renewal of a lease the store already has
		}
	}
	for {
		select {
		case h.pending <- ev:
			return nil
		default:
			// Full: drop the oldest.
			select {
			case old := <-h.pending:
				h.a.log.Warn("lease event queue full; dropping oldest", "action", old.Action, "address", old.Address)
			default:
			}
		}
	}
}

// initTimeout is how long dnsmasq's init waits for the API before the
// cached state answers: dnsmasq serves no DHCP until its init returns.
// The cache holds the same leases as of the last revision the watch
// announced, so answering from it is safe; a hung API must not add more
// than this to a dnsmasq restart.
const initTimeout = 200 * time.Millisecond

// Leases answers dnsmasq's init: from the API when it answers quickly,
// else from the cached host state, so a dnsmasq restarted during an API
// outage (or a hung API) keeps its leases and starts serving at once.
// While the agent already knows the API is down, the cache answers
// without asking.
func (h *LeaseHandler) Leases(ctx context.Context, bridge string) ([]model.Lease, error) {
	h.a.mu.Lock()
	down, has := h.a.apiDown, h.a.hasState
	h.a.mu.Unlock()
	if down && has {
		h.a.log.Info("dnsmasq init answered from the cached state (api unreachable)", "bridge", bridge)
		return h.a.cachedLeases(bridge), nil
	}
	cctx, cancel := context.WithTimeout(ctx, initTimeout)
	defer cancel()
	ls, err := h.a.api.Leases(cctx, h.a.cfg.Host, bridge)
	if err == nil {
		return ls, nil
	}
	h.a.log.Warn("leases from api failed; answering from cached state", "bridge", bridge, "err", err)
	return h.a.cachedLeases(bridge), nil
}

// Forward sends queued events to the API in order until ctx ends,
// retrying with backoff while the API is unreachable.
func (h *LeaseHandler) Forward(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for {
		var ev model.LeaseEvent
		select {
		case <-ctx.Done():
			return
		case ev = <-h.pending:
		}
		for {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := h.a.api.RecordLease(cctx, ev)
			cancel()
			if err == nil {
				backoff = 100 * time.Millisecond
				h.mu.Lock()
				if ev.Action == model.LeaseDel {
					delete(h.delivered, leaseKey(ev))
				} else {
					h.delivered[leaseKey(ev)] = true
				}
				h.mu.Unlock()
				break
			}
			if k := model.KindOf(err); k != 0 {
				// The API understood and refused it (unknown address, MAC
				// mismatch): retrying will not help.
				h.a.log.Warn("lease event refused", "action", ev.Action, "address", ev.Address, "mac", ev.MAC, "err", err)
				break
			}
			h.a.log.Warn("lease event not delivered; retrying", "err", err, "retry_in_ms", backoff.Milliseconds())
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
		}
	}
}

func leaseKey(ev model.LeaseEvent) string { return ev.MAC + "|" + ev.Address.String() }

// LeaseTime is the lease time of the cluster (for dnsmasq's init).
func (h *LeaseHandler) LeaseTime() time.Duration {
	h.a.mu.Lock()
	defer h.a.mu.Unlock()
	if s := h.a.state.Options.DHCPLeaseTime; s > 0 {
		return time.Duration(s) * time.Second
	}
	return model.DefaultDHCPLeaseTime * time.Second
}
