package link

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Watch reports, until ctx ends, every kernel notification that shows a
// planned bridge, uplink or tap differing from the plan: a link deleted,
// down, out of its bridge, not promiscuous, a bridge MAC moved, a bridge
// address removed or an address back on an uplink. notify gets a short
// description. The applier's own changes notify too; the apply they
// cause finds nothing to do, so there is no loop.
func (l *Links) Watch(ctx context.Context, notify func(reason string)) error {
	links := make(chan netlink.LinkUpdate, 1024)
	addrs := make(chan netlink.AddrUpdate, 1024)
	done := make(chan struct{})
	defer close(done)
	errc := make(chan error, 2)
	onErr := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	if err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{
		Namespace: l.ns, ErrorCallback: onErr, ReceiveBufferSize: 1 << 20, ReceiveBufferForceSize: true}); err != nil {
		return fmt.Errorf("subscribe to link events: %w", err)
	}
	if err := netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{
		Namespace: l.ns, ErrorCallback: onErr, ReceiveBufferSize: 1 << 20, ReceiveBufferForceSize: true}); err != nil {
		return fmt.Errorf("subscribe to address events: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case u, ok := <-links:
			if !ok {
				return errors.New("link event subscription closed")
			}
			if why := l.linkDrift(u); why != "" {
				notify(why)
			}
		case u, ok := <-addrs:
			if !ok {
				return errors.New("address event subscription closed")
			}
			if why := l.addrDrift(u); why != "" {
				notify(why)
			}
		}
	}
}

// linkDrift says how a link event differs from the plan ("" when it
// does not concern a planned link or shows nothing wrong).
func (l *Links) linkDrift(u netlink.LinkUpdate) string {
	a := u.Link.Attrs()
	name := a.Name
	gone := u.Header.Type == unix.RTM_DELLINK
	down := a.Flags&net.FlagUp == 0
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.ports[name]; ok {
		// RTM_DELLINK with a master is the tap leaving its bridge (the
		// AF_BRIDGE port message), not the tap's removal.
		if gone || a.MasterIndex == 0 || down {
			delete(l.attached, name)
			if gone && u.IfInfomsg.Family != unix.AF_BRIDGE {
				delete(l.plugged, name) // unplugged: its next plug is not drift
			}
			switch {
			case gone:
				return "tap " + name + " left its bridge or was removed"
			case a.MasterIndex == 0:
				return "tap " + name + " is not in a bridge"
			}
			return "tap " + name + " is down"
		}
		return ""
	}
	if _, ok := l.bridges[name]; ok {
		switch {
		case gone:
			return "bridge " + name + " was removed"
		case down:
			return "bridge " + name + " is down"
		}
		if p, ok := l.pinned[name]; ok && p.index == a.Index && a.HardwareAddr.String() != p.mac {
			return fmt.Sprintf("bridge %s MAC moved to %s", name, a.HardwareAddr)
		}
		return ""
	}
	for br, up := range l.bridges {
		if up != name {
			continue
		}
		switch {
		case gone:
			return "uplink " + name + " was removed or left bridge " + br
		case down:
			return "uplink " + name + " is down"
		case a.MasterIndex == 0:
			return "uplink " + name + " is not in bridge " + br
		case a.RawFlags&unix.IFF_PROMISC == 0:
			return "uplink " + name + " is not promiscuous"
		}
	}
	return ""
}

// addrDrift reports an address removed from a planned bridge, or one
// added to an uplink (it belongs on the bridge).
func (l *Links) addrDrift(u netlink.AddrUpdate) string {
	if u.LinkAddress.IP.To4() == nil {
		return ""
	}
	link, err := l.h.LinkByIndex(u.LinkIndex)
	if err != nil {
		return ""
	}
	name := link.Attrs().Name
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.bridges[name]; ok && !u.NewAddr {
		return fmt.Sprintf("address %s removed from bridge %s", u.LinkAddress.String(), name)
	}
	for _, up := range l.bridges {
		if up == name && up != "" && u.NewAddr {
			return fmt.Sprintf("address %s added to uplink %s", u.LinkAddress.String(), name)
		}
	}
	return ""
}
