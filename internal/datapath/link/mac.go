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

// pinMAC sets the bridge's MAC explicitly (to its uplink's, else to the
// one it has). A Linux bridge whose MAC was never set takes the lowest
// MAC among its ports: a VM's tap with a lower MAC would move it, and
// every guest's cached gateway MAC would go stale.
func (l *Links) pinMAC(ctx context.Context, br netlink.Link, b plan.Bridge) error {
	want := br.Attrs().HardwareAddr
	if b.Interface != "" {
		if up, err := l.h.LinkByName(b.Interface); err == nil && len(up.Attrs().HardwareAddr) == 6 {
			want = up.Attrs().HardwareAddr
		}
	}
	if len(want) != 6 {
		return nil
	}
	have := br.Attrs().HardwareAddr.String()
	idx := br.Attrs().Index
	if p, ok := l.pinned[b.Name]; ok && p.index == idx && p.mac == want.String() && have == p.mac {
		return nil
	}
	if have == want.String() {
		// Same MAC: pinned only if it was set, not chosen by the kernel
		// (a restarted agent must not rewrite a bridge that is right).
		if t, err := l.readProc(ctx, "/sys/class/net/"+b.Name+"/addr_assign_type"); err == nil && strings.TrimSpace(t) == addrAssignedBySet {
			l.pinned[b.Name] = pinnedMAC{index: idx, mac: have}
			return nil
		}
	}
	if err := l.h.LinkSetHardwareAddr(br, net.HardwareAddr(want)); err != nil {
		return fmt.Errorf("pin MAC of %s to %s: %w", b.Name, want, err)
	}
	br.Attrs().HardwareAddr = want
	l.pinned[b.Name] = pinnedMAC{index: idx, mac: want.String()}
	if have == want.String() {
		l.changed("bridge %s MAC %s was chosen by the kernel (moves with its ports): pinned", b.Name, have)
	} else {
		l.changed("bridge %s MAC was %s: pinned to %s", b.Name, have, want)
	}
	l.log.Info("pinned bridge MAC", "bridge", b.Name, "mac", want.String(), "was", have)
	return nil
}
