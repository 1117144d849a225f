package link

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NeighbourMAC returns the link-layer address this host's neighbour table
// holds for addr on device (the metadata service checks that a request
// comes from the VIF its state names). An entry still being resolved, or
// one that failed, has no address and is an error.
func (l *Links) NeighbourMAC(device string, addr netip.Addr) (string, error) {
	dev, err := l.h.LinkByName(device)
	if err != nil {
		return "", fmt.Errorf("find %s: %w", device, err)
	}
	ns, err := l.h.NeighList(dev.Attrs().Index, unix.AF_INET)
	if err != nil {
		return "", fmt.Errorf("list neighbours on %s: %w", device, err)
	}
	for _, n := range ns {
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok || a.Unmap() != addr || len(n.HardwareAddr) == 0 {
			continue
		}
		if n.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) != 0 {
			continue
		}
		return n.HardwareAddr.String(), nil
	}
	return "", fmt.Errorf("no resolved neighbour %s on %s", addr, device)
}
