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
	for attempt := 0; attempt < 2; attempt++ {
		index, err := l.linkIndex(device, attempt > 0)
		if err != nil {
			return "", err
		}
		ns, err := l.h.NeighList(index, unix.AF_INET)
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
	}
	return "", fmt.Errorf("no resolved neighbour %s on %s", addr, device)
}

// linkIndex resolves device's index, remembering it so a metadata request
// costs one netlink dump, not two; fresh re-resolves it (the remembered
// index found nothing: the bridge may have been recreated).
func (l *Links) linkIndex(device string, fresh bool) (int, error) {
	if v, ok := l.indexes.Load(device); ok && !fresh {
		return v.(int), nil
	}
	dev, err := l.h.LinkByName(device)
	if err != nil {
		return 0, fmt.Errorf("find %s: %w", device, err)
	}
	l.indexes.Store(device, dev.Attrs().Index)
	return dev.Attrs().Index, nil
}
