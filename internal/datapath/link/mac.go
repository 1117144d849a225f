package link

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/vishvananda/netlink"

	"novanet/internal/plan"
)

// addrAssignedBySet is the kernel's NET_ADDR_SET: the MAC was set
// explicitly, and a bridge then keeps it whatever ports join.
const addrAssignedBySet = "3"

// pinMAC sets the bridge's MAC explicitly, so it stays what it is. A
// Linux bridge whose MAC was never set takes the lowest MAC among its
// ports: a VM's tap with a lower MAC would move it, and every guest's
// cached gateway MAC would go stale. It is pinned to the MAC it has at
// first sight (a fresh bridge has just taken its uplink's), never changed
// to another: that would itself make the guests' caches stale. A MAC
// moved after pinning is put back.
func (l *Links) pinMAC(ctx context.Context, br netlink.Link, b plan.Bridge) error {
	// Read it again: enslaving the uplink may just have changed it.
	if cur, err := l.h.LinkByIndex(br.Attrs().Index); err == nil {
		br = cur
	}
	have := br.Attrs().HardwareAddr
	if len(have) != 6 {
		return nil
	}
	idx := br.Attrs().Index
	want := have.String()
	if p, ok := l.pinned[b.Name]; ok && p.index == idx {
		if have.String() == p.mac {
			return nil
		}
		want = p.mac // moved by someone: back to what guests know
	} else if t, err := l.proc.ReadFile(ctx, "/sys/class/net/"+b.Name+"/addr_assign_type"); err == nil && strings.TrimSpace(t) == addrAssignedBySet {
		// Already pinned (a restarted agent): adopt it as it is.
		l.pinned[b.Name] = pinnedMAC{index: idx, mac: have.String()}
		return nil
	}
	mac, err := net.ParseMAC(want)
	if err != nil {
		return err
	}
	if err := l.h.LinkSetHardwareAddr(br, mac); err != nil {
		return fmt.Errorf("pin MAC of %s to %s: %w", b.Name, want, err)
	}
	br.Attrs().HardwareAddr = mac
	l.pinned[b.Name] = pinnedMAC{index: idx, mac: want}
	if have.String() == want {
		l.changed("bridge %s MAC %s was chosen by the kernel (moves with its ports): pinned", b.Name, want)
	} else {
		l.changed("bridge %s MAC was %s: put back to %s", b.Name, have, want)
	}
	l.log.Info("pinned bridge MAC", "bridge", b.Name, "mac", want, "was", have.String())
	return nil
}
