package link

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Listing one interface's addresses with netlink.AddrList dumps every
// address of the host and filters in Go, so each sync's cost grew with the
// floating /32s on public_interface (18 ms per sync at 1,000, measured in
// BenchmarkAssociateFloatingIP). addrList asks the kernel to filter by
// interface instead (a strict-checked dump, Linux 4.20 and later).

// strictSocket returns the applier's strict-checking route socket, made
// on first use and kept as long as the applier.
func (l *Links) strictSocket() (*nl.SocketHandle, error) {
	l.strictMu.Lock()
	defer l.strictMu.Unlock()
	if l.strict != nil {
		return l.strict, nil
	}
	ns := netns.None()
	if l.ns != nil {
		ns = *l.ns
	}
	sock, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	if err := unix.SetsockoptInt(int(sock.GetFd()), unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1); err != nil {
		sock.Close()
		return nil, err
	}
	l.strict = &nl.SocketHandle{Socket: sock}
	return l.strict, nil
}

// addrList returns link's IPv4 addresses with the fields the applier uses
// (address and prefix, peer, broadcast, label, flags, scope). Without
// strict checking (an old kernel) it falls back to netlink.AddrList.
func (l *Links) addrList(link netlink.Link) ([]netlink.Addr, error) {
	sh, err := l.strictSocket()
	if err != nil {
		return l.h.AddrList(link, unix.AF_INET)
	}
	req := nl.NewNetlinkRequest(unix.RTM_GETADDR, unix.NLM_F_DUMP)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: sh}
	msg := nl.NewIfAddrmsg(unix.AF_INET)
	msg.Index = uint32(link.Attrs().Index)
	req.AddData(msg)
	var out []netlink.Addr
	var perr error
	err = req.ExecuteIter(unix.NETLINK_ROUTE, unix.RTM_NEWADDR, func(m []byte) bool {
		if len(m) < unix.SizeofIfAddrmsg {
			return true
		}
		am := nl.DeserializeIfAddrmsg(m)
		if int(am.Index) != link.Attrs().Index || am.Family != unix.AF_INET {
			return true // a kernel that ignored the filter
		}
		attrs, err := nl.ParseRouteAttr(m[unix.SizeofIfAddrmsg:])
		if err != nil {
			perr = err
			return false
		}
		a := netlink.Addr{Flags: int(am.Flags), Scope: int(am.Scope), LinkIndex: int(am.Index)}
		var local, peer net.IP
		mask := net.CIDRMask(int(am.Prefixlen), 32)
		for _, at := range attrs {
			switch at.Attr.Type {
			case unix.IFA_LOCAL:
				local = net.IP(append([]byte(nil), at.Value...))
			case unix.IFA_ADDRESS:
				peer = net.IP(append([]byte(nil), at.Value...))
			case unix.IFA_BROADCAST:
				a.Broadcast = net.IP(append([]byte(nil), at.Value...))
			case unix.IFA_LABEL:
				a.Label = string(at.Value[:len(at.Value)-1])
			case unix.IFA_FLAGS:
				a.Flags = int(nl.NativeEndian().Uint32(at.Value[0:4]))
			}
		}
		if local == nil {
			local = peer
		}
		a.IPNet = &net.IPNet{IP: local, Mask: mask}
		if peer != nil && !peer.Equal(local) {
			a.Peer = &net.IPNet{IP: peer, Mask: mask}
		}
		out = append(out, a)
		return true
	})
	if err == nil {
		err = perr
	}
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", link.Attrs().Name, err)
	}
	return out, nil
}
