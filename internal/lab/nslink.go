package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// nsLinks is a netlink handle bound to one named namespace: its calls
// act there without moving any thread, and its errors name it.
type nsLinks struct {
	name string
	ns   netns.NsHandle
	h    *netlink.Handle
}

// openNS binds to the existing namespace name.
func openNS(name string) (*nsLinks, error) {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", name, err)
	}
	return bindNS(name, ns)
}

// createNS creates the namespace name (as `ip netns add`) and binds to it.
func createNS(name string) (*nsLinks, error) {
	ns, err := newNamedNS(name)
	if err != nil {
		return nil, fmt.Errorf("create network namespace %s: %w", name, err)
	}
	return bindNS(name, ns)
}

func bindNS(name string, ns netns.NsHandle) (*nsLinks, error) {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netlink in %s: %w", name, err)
	}
	return &nsLinks{name: name, ns: ns, h: h}, nil
}

func (n *nsLinks) Close() {
	n.h.Close()
	n.ns.Close()
}

func (n *nsLinks) errorf(format string, args ...any) error {
	return fmt.Errorf("in %s: "+format, append([]any{n.name}, args...)...)
}

func (n *nsLinks) link(dev string) (netlink.Link, error) {
	lk, err := n.h.LinkByName(dev)
	if err != nil {
		return nil, n.errorf("link %s: %w", dev, err)
	}
	return lk, nil
}

func (n *nsLinks) setUp(dev string) error {
	lk, err := n.link(dev)
	if err != nil {
		return err
	}
	if err := n.h.LinkSetUp(lk); err != nil {
		return n.errorf("set %s up: %w", dev, err)
	}
	return nil
}

// addBridge adds a bridge with the kernel's defaults, as `ip link add
// NAME type bridge` does, and sets it up.
func (n *nsLinks) addBridge(name string) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	if err := n.h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
		return n.errorf("add bridge %s: %w", name, err)
	}
	return n.setUp(name)
}

// addVeth adds the veth pair name here and peer in peerNS, both with the
// kernel's defaults (MTU 1500, queue length 1000), as `ip link add NAME
// type veth peer name PEER netns PEERNS` does.
func (n *nsLinks) addVeth(name string, peerNS *nsLinks, peer string) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	veth := netlink.NewVeth(attrs)
	veth.PeerName = peer
	veth.PeerNamespace = netlink.NsFd(peerNS.ns)
	if err := n.h.LinkAdd(veth); err != nil {
		return n.errorf("add veth %s (peer %s in %s): %w", name, peer, peerNS.name, err)
	}
	return nil
}

// enslave puts dev on bridge and sets it up.
func (n *nsLinks) enslave(dev, bridge string) error {
	lk, err := n.link(dev)
	if err != nil {
		return err
	}
	br, err := n.link(bridge)
	if err != nil {
		return err
	}
	if err := n.h.LinkSetMasterByIndex(lk, br.Attrs().Index); err != nil {
		return n.errorf("put %s on %s: %w", dev, bridge, err)
	}
	return n.setUp(dev)
}

// addAddr adds cidr to dev with no broadcast address, as `ip addr add
// CIDR dev DEV` does (netlink would otherwise derive one).
func (n *nsLinks) addAddr(dev, cidr string) error {
	lk, err := n.link(dev)
	if err != nil {
		return err
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return n.errorf("address %s: %w", cidr, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}, Broadcast: net.IPv4zero}
	if err := n.h.AddrAdd(lk, addr); err != nil {
		return n.errorf("add address %s to %s: %w", cidr, dev, err)
	}
	return nil
}

// hasAddr reports whether dev holds cidr.
func (n *nsLinks) hasAddr(dev string, cidr netip.Prefix) bool {
	lk, err := n.h.LinkByName(dev)
	if err != nil {
		return false
	}
	addrs, err := n.h.AddrList(lk, netlink.FAMILY_V4)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		ones, _ := a.Mask.Size()
		if ip, ok := netip.AddrFromSlice(a.IP); ok && netip.PrefixFrom(ip.Unmap(), ones) == cidr {
			return true
		}
	}
	return false
}

// addRoute adds a route to dst ("default" or a CIDR) via gw, or on-link
// on dev when gw is empty, as `ip route add DST via GW` and `ip route add
// DST dev DEV` do.
func (n *nsLinks) addRoute(dst, gw, dev string) error {
	r := &netlink.Route{}
	if dst != "default" {
		_, ipnet, err := net.ParseCIDR(dst)
		if err != nil {
			return n.errorf("route %s: %w", dst, err)
		}
		r.Dst = ipnet
	}
	switch {
	case gw != "":
		if r.Gw = net.ParseIP(gw).To4(); r.Gw == nil {
			return n.errorf("route %s: gateway %q is not an IPv4 address", dst, gw)
		}
	case dev != "":
		lk, err := n.link(dev)
		if err != nil {
			return err
		}
		r.LinkIndex, r.Scope = lk.Attrs().Index, netlink.SCOPE_LINK
	default:
		return errors.New("addRoute needs a gateway or a device")
	}
	if err := n.h.RouteAdd(r); err != nil {
		return n.errorf("add route %s: %w", dst, err)
	}
	return nil
}

// delLink deletes dev.
func (n *nsLinks) delLink(dev string) error {
	lk, err := n.link(dev)
	if err != nil {
		return err
	}
	if err := n.h.LinkDel(lk); err != nil {
		return n.errorf("delete %s: %w", dev, err)
	}
	return nil
}
