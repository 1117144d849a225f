package link

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"novanet/internal/netnsdo"
	"novanet/internal/plan"
)

// FloatingProto tags the floating /32s novanet adds (the address's
// IFA_PROTO, Linux 6.1 and later; iproute2 6.2 and later shows "proto
// 0x6e"). The tag lives on the address itself, so an agent restarted
// after a disassociation still knows which addresses are its own to
// remove, and an address an operator put on public_interface is never
// touched. A bridge records its addresses in its alias instead, but 1,000
// /32s do not fit in a 255-byte alias. On a kernel that ignores the tag,
// the dump finds none as novanet's: addresses are then added but never
// removed, and adding one already there is refused with what to do.
const FloatingProto = 0x6e

const ifaProto = 11 // IFA_PROTO, not in x/sys yet

// Floating holds the floating addresses of a plan on their interfaces and
// announces each new one with gratuitous ARP.
type Floating struct {
	h    *netlink.Handle
	sock *nl.SocketHandle
	// packetFD is an AF_PACKET socket in the applier's namespace for
	// gratuitous ARP; -1 until first used.
	packetFD int
	nsName   string
	log      *slog.Logger
	// ARPCount is send_arp_for_ha_count when send_arp_for_ha is on: how
	// many gratuitous ARPs announce a new address (0: none). The first
	// goes out at once, the rest ARPInterval apart in the background.
	ARPCount    int
	ARPInterval time.Duration

	mu   sync.Mutex
	held map[plan.InterfaceAddr]bool // addresses tagged as ours, as last read or made
	read bool
	// hairpins are the taps seen in hairpin mode (a full apply re-checks).
	hairpins map[string]bool
	// changeCount and announced count kernel changes and gratuitous ARPs
	// sent (Changes, Announcements).
	changeCount, announced atomic.Int64
}

// NewFloating returns an applier for the current network namespace.
func NewFloating(log *slog.Logger) (*Floating, error) {
	return newFloating("", log)
}

// NewFloatingInNamespace returns an applier for the named namespace.
func NewFloatingInNamespace(name string, log *slog.Logger) (*Floating, error) {
	return newFloating(name, log)
}

func newFloating(name string, log *slog.Logger) (*Floating, error) {
	if log == nil {
		log = slog.Default()
	}
	ns := netns.None()
	if name != "" {
		var err error
		if ns, err = netns.GetFromName(name); err != nil {
			return nil, fmt.Errorf("open network namespace %s: %w", name, err)
		}
		defer ns.Close()
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	s, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	return &Floating{h: h, sock: &nl.SocketHandle{Socket: s}, packetFD: -1, nsName: name,
		log: log.With("component", "floating"), ARPInterval: time.Second, held: map[plan.InterfaceAddr]bool{}, hairpins: map[string]bool{}}, nil
}

// Close releases the sockets.
func (f *Floating) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.h.Close()
	f.sock.Close()
	if f.packetFD >= 0 {
		unix.Close(f.packetFD)
		f.packetFD = -1
	}
}

// Apply makes the tagged addresses match the plan's floating addresses:
// missing ones are added (and announced), tagged ones no longer wanted are
// removed, and local instances' taps get hairpin mode. full re-reads the
// kernel instead of trusting what it did last, so an address deleted by
// hand comes back.
func (f *Floating) Apply(ctx context.Context, floats []plan.FloatingAddr, full bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if full || !f.read {
		held, err := f.list()
		if err != nil {
			return err
		}
		f.held, f.read = held, true
		clear(f.hairpins)
	}
	var errs []error
	want := make([]plan.InterfaceAddr, 0, len(floats))
	for _, fa := range floats {
		want = append(want, fa.InterfaceAddr)
		if fa.Port != "" && !f.hairpins[fa.Port] {
			if err := f.hairpin(fa.Port); err != nil {
				errs = append(errs, err)
			}
		}
	}
	wanted := make(map[plan.InterfaceAddr]bool, len(want))
	for _, w := range want {
		wanted[w] = true
		if f.held[w] {
			continue
		}
		if err := f.add(w); err != nil {
			errs = append(errs, err)
			continue
		}
		f.held[w] = true
		f.changeCount.Add(1)
		f.log.Info("added floating address", "interface", w.Interface, "address", w.Address)
		f.announce(ctx, w)
	}
	for h := range f.held {
		if wanted[h] {
			continue
		}
		if err := f.del(h); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(f.held, h)
		f.changeCount.Add(1)
		f.log.Info("removed floating address", "interface", h.Interface, "address", h.Address)
	}
	return errors.Join(errs...)
}

// hairpin turns on hairpin mode on an instance's tap, so the bridge may
// send a frame back out the port it came in on: an instance's packet to
// its own floating address is DNATed in the bridge (br_netfilter) and
// must return to it. Only that instance's frames come back to it. A tap
// not plugged yet is skipped and tried again on the next apply. Hairpin
// mode is left on when the association goes: it is harmless, and the tap
// goes away with the instance.
func (f *Floating) hairpin(dev string) error {
	l, err := f.h.LinkByName(dev)
	if notFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tap %s: %w", dev, err)
	}
	if l.Attrs().MasterIndex == 0 {
		return nil // not on its bridge yet
	}
	if pi, err := f.h.LinkGetProtinfo(l); err == nil && pi.Hairpin {
		f.hairpins[dev] = true
		return nil
	}
	if err := f.h.LinkSetHairpin(l, true); err != nil {
		return fmt.Errorf("hairpin mode on %s: %w", dev, err)
	}
	f.hairpins[dev] = true
	f.changeCount.Add(1)
	f.log.Info("hairpin mode on", "device", dev)
	return nil
}

// Announcements is how many gratuitous ARPs were sent. Safe to call from
// any goroutine: the announcements after the first are sent in the
// background.
func (f *Floating) Announcements() int64 { return f.announced.Load() }

// Changes is how many kernel changes this applier made (tests prove with
// it that a second identical apply makes none). Safe to call from any
// goroutine, during an Apply too.
func (f *Floating) Changes() int64 { return f.changeCount.Load() }

// Held lists the addresses the applier holds, sorted (tests, status).
func (f *Floating) Held() []plan.InterfaceAddr {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]plan.InterfaceAddr, 0, len(f.held))
	for h := range f.held {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b plan.InterfaceAddr) int { return a.Address.Addr().Compare(b.Address.Addr()) })
	return out
}

func (f *Floating) request(typ, flags int, a netip.Prefix, index int) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(typ, flags|unix.NLM_F_ACK)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: f.sock}
	msg := nl.NewIfAddrmsg(unix.AF_INET)
	msg.Prefixlen = uint8(a.Bits())
	msg.Index = uint32(index)
	req.AddData(msg)
	ip := a.Addr().AsSlice()
	req.AddData(nl.NewRtAttr(unix.IFA_LOCAL, ip))
	req.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, ip))
	return req
}

func (f *Floating) linkIndex(name string) (int, error) {
	l, err := f.h.LinkByName(name)
	if notFound(err) {
		return 0, fmt.Errorf("interface %s does not exist on this host: create the floating range with --interface naming this host's public interface, or set public_interface", name)
	}
	if err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, err)
	}
	return l.Attrs().Index, nil
}

func (f *Floating) add(w plan.InterfaceAddr) error {
	idx, err := f.linkIndex(w.Interface)
	if err != nil {
		return fmt.Errorf("floating ip %s: %w", w.Address.Addr(), err)
	}
	req := f.request(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, w.Address, idx)
	req.AddData(nl.NewRtAttr(ifaProto, []byte{FloatingProto}))
	_, err = req.Execute(unix.NETLINK_ROUTE, 0)
	if errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("floating ip %s is already on %s but not put there by novanet; remove it (ip addr del %s dev %s) so the agent can manage it",
			w.Address.Addr(), w.Interface, w.Address, w.Interface)
	}
	if err != nil {
		return fmt.Errorf("add floating ip %s to %s: %w", w.Address, w.Interface, err)
	}
	return nil
}

func (f *Floating) del(h plan.InterfaceAddr) error {
	idx, err := f.linkIndex(h.Interface)
	if err != nil {
		return nil // the interface and its addresses are gone
	}
	_, err = f.request(unix.RTM_DELADDR, 0, h.Address, idx).Execute(unix.NETLINK_ROUTE, 0)
	if errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove floating ip %s from %s: %w", h.Address, h.Interface, err)
	}
	return nil
}

// list dumps the IPv4 addresses tagged FloatingProto.
func (f *Floating) list() (map[plan.InterfaceAddr]bool, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETADDR, unix.NLM_F_DUMP)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: f.sock}
	req.AddData(nl.NewIfAddrmsg(unix.AF_INET))
	type tagged struct {
		index  int
		prefix netip.Prefix
	}
	var found []tagged
	var perr error
	err := req.ExecuteIter(unix.NETLINK_ROUTE, unix.RTM_NEWADDR, func(m []byte) bool {
		if len(m) < unix.SizeofIfAddrmsg {
			return true
		}
		msg := nl.DeserializeIfAddrmsg(m)
		attrs, err := nl.ParseRouteAttr(m[unix.SizeofIfAddrmsg:])
		if err != nil {
			perr = err
			return false
		}
		var local netip.Addr
		ours := false
		for _, at := range attrs {
			switch at.Attr.Type {
			case unix.IFA_LOCAL:
				local, _ = netip.AddrFromSlice(at.Value)
			case ifaProto:
				ours = len(at.Value) == 1 && at.Value[0] == FloatingProto
			}
		}
		if ours && local.Is4() {
			found = append(found, tagged{int(msg.Index), netip.PrefixFrom(local, int(msg.Prefixlen))})
		}
		return true
	})
	if err == nil {
		err = perr
	}
	if err != nil {
		return nil, fmt.Errorf("list floating addresses: %w", err)
	}
	// Name the interfaces after the dump: the socket is busy during it.
	names := map[int]string{}
	out := make(map[plan.InterfaceAddr]bool, len(found))
	for _, t := range found {
		name, ok := names[t.index]
		if !ok {
			l, err := f.h.LinkByIndex(t.index)
			if err != nil {
				return nil, fmt.Errorf("interface %d: %w", t.index, err)
			}
			name = l.Attrs().Name
			names[t.index] = name
		}
		out[plan.InterfaceAddr{Interface: name, Address: t.prefix}] = true
	}
	return out, nil
}

// announce sends ARPCount gratuitous ARPs for a new address, so neighbours
// (the upstream router) that knew it at another host's MAC switch now
// instead of when their entry times out: what makes a floating address
// moved between multi-host computes reachable within a second. The first
// goes out before Apply returns; failures are logged, never fatal.
func (f *Floating) announce(ctx context.Context, w plan.InterfaceAddr) {
	if f.ARPCount <= 0 {
		return
	}
	if err := f.sendGARP(w); err != nil {
		f.log.Warn("gratuitous arp failed", "interface", w.Interface, "address", w.Address, "err", err)
		return
	}
	if f.ARPCount == 1 {
		return
	}
	go func() {
		for i := 1; i < f.ARPCount; i++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(f.ARPInterval):
			}
			f.mu.Lock()
			still := f.held[w]
			var err error
			if still {
				err = f.sendGARP(w)
			}
			f.mu.Unlock()
			if !still || err != nil {
				return
			}
		}
	}()
}

// sendGARP broadcasts one ARP request for the address from itself
// (sender and target both the floating address), which Linux and most
// routers take as an update of an existing entry. Called with f.mu held.
func (f *Floating) sendGARP(w plan.InterfaceAddr) error {
	l, err := f.h.LinkByName(w.Interface)
	if err != nil {
		return err
	}
	mac := l.Attrs().HardwareAddr
	if len(mac) != 6 {
		return fmt.Errorf("%s has no Ethernet address", w.Interface)
	}
	if f.packetFD < 0 {
		open := func() error {
			// Protocol 0: a send-only socket that queues nothing it receives.
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
			f.packetFD = fd
			return err
		}
		if f.nsName != "" {
			err = netnsdo.Do(f.nsName, open)
		} else {
			err = open()
		}
		if err != nil {
			f.packetFD = -1
			return fmt.Errorf("packet socket: %w", err)
		}
	}
	frame := garpFrame(mac, w.Address.Addr())
	to := &unix.SockaddrLinklayer{Ifindex: l.Attrs().Index, Protocol: htons(unix.ETH_P_ARP), Halen: 6}
	copy(to.Addr[:], broadcast)
	if err := unix.Sendto(f.packetFD, frame, 0, to); err != nil {
		return fmt.Errorf("send on %s: %w", w.Interface, err)
	}
	f.announced.Add(1)
	return nil
}

var broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// garpFrame is an Ethernet broadcast ARP request "who has ip? tell ip"
// from mac (arping -U's packet).
func garpFrame(mac net.HardwareAddr, ip netip.Addr) []byte {
	b := make([]byte, 0, 42)
	b = append(b, broadcast...)
	b = append(b, mac...)
	b = binary.BigEndian.AppendUint16(b, unix.ETH_P_ARP)
	b = binary.BigEndian.AppendUint16(b, 1)      // hardware: Ethernet
	b = binary.BigEndian.AppendUint16(b, 0x0800) // protocol: IPv4
	b = append(b, 6, 4)
	b = binary.BigEndian.AppendUint16(b, 1) // request
	v := ip.As4()
	b = append(b, mac...)
	b = append(b, v[:]...)
	b = append(b, make([]byte, 6)...)
	b = append(b, v[:]...)
	return b
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
