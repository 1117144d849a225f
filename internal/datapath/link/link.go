// Package link applies the bridges, ports and sysctls of a plan with
// netlink: create the bridge, enslave flat_interface (promiscuous) and
// move its IPv4 addresses and routes to the bridge as nova did, put the
// gateway address on the bridge where this host serves the network, and
// attach instance taps as they appear. Every change is made only when the
// kernel differs, so a sync with nothing to do changes nothing.
package link

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"novanet/internal/datapath/sysctl"
	"novanet/internal/plan"
)

// Links is the applier.
type Links struct {
	h *netlink.Handle
	// ns is the namespace of h for subscriptions; closed never (it lives
	// as long as the process or the test's namespace).
	ns    *netns.NsHandle
	netns string
	log   *slog.Logger
	mu    sync.Mutex
	added map[string]map[string]bool // bridge -> addresses this applier added
	ports map[string]string          // tap device -> bridge, from the last plan
	// attached: taps seen enslaved to their bridge and up, or seen absent
	// (device -> bridge). A light apply trusts it, so a sync costs the same
	// with 5,000 taps as with 5; the port watch (a tap appearing, leaving
	// or losing its bridge) and full applies correct it.
	attached map[string]string
	// plugged: taps this applier has seen in their bridge. Attaching one
	// that was never there is the hypervisor's plug, not drift.
	plugged map[string]bool
	// bridges and uplinks of the last plan (bridge -> its uplink, "" for
	// none), for the watch.
	bridges map[string]string
	// pinned: bridge -> the MAC this applier pinned it to, on the bridge
	// with that index (a recreated bridge is pinned again).
	pinned map[string]pinnedMAC
	// proc reads and writes /proc/sys and /sys in the applier's
	// namespace; sysctls applies the plan's sysctls through it.
	proc    sysctl.Proc
	sysctls *sysctl.Applier
	// changeCount counts kernel changes made (Changes).
	changeCount atomic.Int64
	// indexes remembers bridge indexes for NeighbourMAC (device -> int).
	indexes sync.Map
	// strict is the strict-checking route socket addrList dumps one
	// interface's addresses through (addrlist.go); nil until first used.
	strictMu sync.Mutex
	strict   *nl.SocketHandle
	// changes describes them (what differed, what was done) until
	// TakeChanges.
	changes []string
}

type pinnedMAC struct {
	index int
	mac   string
}

// changed counts one kernel change and records its description.
func (l *Links) changed(format string, args ...any) {
	l.changeCount.Add(1)
	if len(l.changes) < 64 {
		l.changes = append(l.changes, fmt.Sprintf(format, args...))
	}
}

// Changes is how many kernel changes this applier made, new VIFs plugged
// in included (tests prove with it that a second identical apply makes
// none). Safe to call from any goroutine, during an Apply too.
func (l *Links) Changes() int64 { return l.changeCount.Load() }

// TakeChanges returns the descriptions of the changes made since the
// last call.
func (l *Links) TakeChanges() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.changes
	l.changes = nil
	return out
}

// New returns an applier for the current network namespace.
func New(log *slog.Logger) (*Links, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	return newLinks(h, nil, "", log), nil
}

// NewInNamespace returns an applier for the named network namespace
// (tests, and tools that manage a namespace from outside).
func NewInNamespace(name string, log *slog.Logger) (*Links, error) {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", name, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink in namespace %s: %w", name, err)
	}
	return newLinks(h, &ns, name, log), nil
}

func newLinks(h *netlink.Handle, ns *netns.NsHandle, name string, log *slog.Logger) *Links {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "link")
	proc := sysctl.Proc{Netns: name}
	return &Links{h: h, ns: ns, netns: name, log: log, proc: proc, sysctls: sysctl.New(proc, nil, log),
		added: map[string]map[string]bool{}, ports: map[string]string{}, attached: map[string]string{},
		bridges: map[string]string{}, pinned: map[string]pinnedMAC{}, plugged: map[string]bool{}}
}

func notFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

// ApplyBridges makes each bridge, its uplink, addresses and ports match.
// full re-checks every tap in the kernel instead of trusting the ones it
// attached before.
func (l *Links) ApplyBridges(ctx context.Context, bridges []plan.Bridge, full bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	ports := map[string]string{}
	l.bridges = map[string]string{}
	for _, b := range bridges {
		l.bridges[b.Name] = b.Interface
		for _, p := range b.Ports {
			ports[p.Device] = b.Name
		}
		if err := l.applyBridge(ctx, b, full); err != nil {
			errs = append(errs, fmt.Errorf("bridge %s: %w", b.Name, err))
		}
	}
	l.ports = ports
	for dev := range l.attached {
		if _, ok := ports[dev]; !ok {
			delete(l.attached, dev)
		}
	}
	for dev := range l.plugged {
		if _, ok := ports[dev]; !ok {
			delete(l.plugged, dev)
		}
	}
	return errors.Join(errs...)
}

func (l *Links) applyBridge(ctx context.Context, b plan.Bridge, full bool) error {
	br, err := l.h.LinkByName(b.Name)
	if notFound(err) {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = b.Name
		if b.MTU > 0 {
			attrs.MTU = b.MTU
		}
		if err := l.h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			return fmt.Errorf("create: %w", err)
		}
		l.changed("bridge %s was missing: created", b.Name)
		l.log.Info("created bridge", "bridge", b.Name)
		br, err = l.h.LinkByName(b.Name)
	}
	if err != nil {
		return err
	}
	if br.Type() != "bridge" {
		return fmt.Errorf("%s exists but is a %s, not a bridge; rename it or choose another bridge name", b.Name, br.Type())
	}
	if br.Attrs().Flags&net.FlagUp == 0 {
		if err := l.h.LinkSetUp(br); err != nil {
			return fmt.Errorf("set up: %w", err)
		}
		l.changed("bridge %s was down: set up", b.Name)
	}

	var errs []error
	if b.Interface != "" {
		if err := l.enslaveUplink(br, b.Interface, b); err != nil {
			errs = append(errs, err)
		}
	}
	if err := l.pinMAC(ctx, br, b); err != nil {
		errs = append(errs, err)
	}
	if err := l.applyAddresses(ctx, br, b); err != nil {
		errs = append(errs, err)
	}
	for _, p := range b.Ports {
		if !full && l.attached[p.Device] == b.Name {
			continue
		}
		if err := l.attach(br, p.Device); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// enslaveUplink puts the physical interface into the bridge, promiscuous
// and up, and moves its IPv4 addresses and routes to the bridge so the
// host keeps its connectivity (nova's ensure_bridge).
func (l *Links) enslaveUplink(br netlink.Link, name string, b plan.Bridge) error {
	up, err := l.h.LinkByName(name)
	if notFound(err) && b.VLAN != 0 {
		// VlanManager's ensure_vlan is not built yet (this kernel has no
		// 802.1Q to test it on); a VLAN interface made by hand works.
		return fmt.Errorf("VLAN %d interface %s does not exist and novanet does not create VLAN interfaces yet; create it (ip link add link %s name %s type vlan id %d)",
			b.VLAN, name, b.VLANParent, name, b.VLAN)
	}
	if notFound(err) {
		return fmt.Errorf("interface %s does not exist on this host; set flat_interface (or the network's bridge_interface) to the VM network's interface", name)
	}
	if err != nil {
		return err
	}
	if up.Attrs().MasterIndex != br.Attrs().Index {
		if up.Attrs().MasterIndex != 0 {
			return fmt.Errorf("interface %s is already enslaved to another device (index %d); release it first", name, up.Attrs().MasterIndex)
		}
		if err := l.h.LinkSetMaster(up, br); err != nil {
			return fmt.Errorf("enslave %s: %w", name, err)
		}
		l.changed("uplink %s was not in bridge %s: enslaved", name, br.Attrs().Name)
		l.log.Info("enslaved uplink", "bridge", br.Attrs().Name, "interface", name)
	}
	// The IFF_PROMISC flag itself: netlink's promiscuity count stays at
	// 1 through bridge membership, so it says nothing about the flag.
	if up.Attrs().RawFlags&unix.IFF_PROMISC == 0 {
		if err := l.h.SetPromiscOn(up); err != nil {
			return fmt.Errorf("promiscuous %s: %w", name, err)
		}
		l.changed("uplink %s was not promiscuous: set promisc on", name)
	}
	if up.Attrs().Flags&net.FlagUp == 0 {
		if err := l.h.LinkSetUp(up); err != nil {
			return fmt.Errorf("set %s up: %w", name, err)
		}
		l.changed("uplink %s was down: set up", name)
	}
	return l.moveAddresses(up, br)
}

func (l *Links) moveAddresses(from, to netlink.Link) error {
	addrs, err := l.addrList(from)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", from.Attrs().Name, err)
	}
	if len(addrs) == 0 {
		return nil
	}
	routes, err := l.h.RouteList(from, unix.AF_INET)
	if err != nil {
		return fmt.Errorf("list routes of %s: %w", from.Attrs().Name, err)
	}
	for _, ad := range addrs {
		if err := l.h.AddrDel(from, &ad); err != nil {
			return fmt.Errorf("remove %s from %s: %w", ad.IPNet, from.Attrs().Name, err)
		}
		moved := &netlink.Addr{IPNet: ad.IPNet, Broadcast: ad.Broadcast, Label: ""}
		if err := l.h.AddrReplace(to, moved); err != nil {
			return fmt.Errorf("add %s to %s: %w", ad.IPNet, to.Attrs().Name, err)
		}
		l.changed("address %s was on uplink %s: moved to %s", ad.IPNet, from.Attrs().Name, to.Attrs().Name)
		l.log.Info("moved address to bridge", "address", ad.IPNet.String(), "from", from.Attrs().Name, "bridge", to.Attrs().Name)
	}
	// Routes through the uplink went away with its addresses; add the
	// ones that were not the kernel's own subnet routes via the bridge.
	for _, r := range routes {
		if r.Protocol == unix.RTPROT_KERNEL {
			continue
		}
		// A fresh route: flags read back from the kernel (linkdown)
		// are refused when writing.
		nr := &netlink.Route{LinkIndex: to.Attrs().Index, Dst: r.Dst, Gw: r.Gw, Src: r.Src,
			Priority: r.Priority, Table: r.Table, Scope: r.Scope, Type: r.Type, Protocol: r.Protocol}
		if err := l.h.RouteReplace(nr); err != nil {
			return fmt.Errorf("move route %s to %s: %w", r, to.Attrs().Name, err)
		}
		l.changed("route %s followed its address: moved to %s", r.Dst, to.Attrs().Name)
	}
	return nil
}

func (l *Links) applyAddresses(ctx context.Context, br netlink.Link, b plan.Bridge) error {
	have, err := l.addrList(br)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	present := map[string]netlink.Addr{}
	for _, a := range have {
		present[a.IPNet.String()] = a
	}
	added := l.added[b.Name]
	if added == nil {
		// First sight of this bridge since the process started: what a
		// previous agent added is recorded on the bridge itself.
		added = recordedAddrs(br.Attrs().Alias)
		l.added[b.Name] = added
	}
	defer func() {
		if err := l.record(br, added); err != nil {
			l.log.Warn("could not record the bridge's planned addresses; a restarted agent will not remove them when they leave the plan",
				"bridge", b.Name, "err", err)
		}
	}()
	want := map[string]bool{}
	for _, p := range b.Addresses {
		key := p.String()
		want[key] = true
		if _, ok := present[key]; ok {
			continue
		}
		ipn := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}
		if err := l.h.AddrAdd(br, &netlink.Addr{IPNet: ipn}); err != nil {
			return fmt.Errorf("add %s: %w", key, err)
		}
		added[key] = true
		l.changed("address %s was missing on %s: added", key, b.Name)
		l.log.Info("added bridge address", "bridge", b.Name, "address", key)
	}
	// Only addresses this applier put there are taken away; moved uplink
	// addresses and an operator's own stay.
	for key := range added {
		if want[key] {
			continue
		}
		if a, ok := present[key]; ok {
			if err := l.keepSecondaries(ctx, br, a, have); err != nil {
				return fmt.Errorf("remove %s: %w", key, err)
			}
			if err := l.h.AddrDel(br, &a); err != nil {
				return fmt.Errorf("remove %s: %w", key, err)
			}
			l.changed("address %s left the plan: removed from %s", key, b.Name)
			l.log.Info("removed bridge address", "bridge", b.Name, "address", key)
		}
		delete(added, key)
	}
	return nil
}

// keepSecondaries makes sure removing a, when it is the primary address
// of its subnet, does not take the subnet's secondary addresses with it
// (the kernel deletes them unless promote_secondaries is on): a gateway
// added before the host's own address in the same subnet is primary.
func (l *Links) keepSecondaries(ctx context.Context, br netlink.Link, a netlink.Addr, have []netlink.Addr) error {
	if a.Flags&unix.IFA_F_SECONDARY != 0 {
		return nil
	}
	shared := false
	for _, o := range have {
		if !o.IP.Equal(a.IP) && a.IPNet.Contains(o.IP) && slices.Equal(o.Mask, a.Mask) {
			shared = true
		}
	}
	if !shared {
		return nil
	}
	path := "/proc/sys/net/ipv4/conf/" + br.Attrs().Name + "/promote_secondaries"
	if cur, err := l.proc.ReadFile(ctx, path); err == nil && cur == "1" {
		return nil
	}
	if err := l.proc.WriteFile(ctx, path, "1"); err != nil {
		return fmt.Errorf("turn on promote_secondaries so the subnet's other addresses survive: %w", err)
	}
	l.changed("promote_secondaries was off on %s: turned on", br.Attrs().Name)
	l.log.Info("set promote_secondaries", "bridge", br.Attrs().Name)
	return nil
}

// aliasPrefix starts the bridge alias (IFLA_IFALIAS) in which the
// addresses this applier added are recorded. Only those are removed when
// they leave the plan, even by an agent restarted in between: an address
// moved from the uplink, one nova or the operator put there, is the
// host's own, and deleting it could cut the host off (a bridge nova set
// up long ago carries the host's management address). The alias is
// inert: the kernel, dnsmasq and iptables ignore it.
const aliasPrefix = "novanet-addrs:"

// maxAlias is the kernel's limit on an interface alias (IFALIASZ - 1).
const maxAlias = 255

func recordedAddrs(alias string) map[string]bool {
	out := map[string]bool{}
	rest, ok := strings.CutPrefix(alias, aliasPrefix)
	if !ok {
		return out
	}
	for _, f := range strings.Split(rest, ",") {
		if p, err := netip.ParsePrefix(f); err == nil {
			out[p.String()] = true
		}
	}
	return out
}

// record writes the added set into the bridge's alias when it differs.
// An alias someone else set is left alone (the set then lives only in
// memory).
func (l *Links) record(br netlink.Link, added map[string]bool) error {
	cur := br.Attrs().Alias
	if cur != "" && !strings.HasPrefix(cur, aliasPrefix) {
		return nil
	}
	keys := make([]string, 0, len(added))
	for k := range added {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := ""
	if len(keys) > 0 {
		want = aliasPrefix + strings.Join(keys, ",")
	}
	if want == cur {
		return nil
	}
	if len(want) > maxAlias {
		return fmt.Errorf("%d addresses do not fit in the %d-byte interface alias", len(keys), maxAlias)
	}
	if err := l.h.LinkSetAlias(br, want); err != nil {
		return fmt.Errorf("set alias of %s: %w", br.Attrs().Name, err)
	}
	br.Attrs().Alias = want
	l.changed("alias of %s: recorded %q", br.Attrs().Name, want)
	return nil
}

// attach enslaves a tap to the bridge and sets it up; a tap that does not
// exist yet is not an error (the hypervisor has not plugged it).
func (l *Links) attach(br netlink.Link, dev string) error {
	tap, err := l.h.LinkByName(dev)
	if notFound(err) {
		// Not plugged yet: the port watch reports it when it appears.
		l.attached[dev] = br.Attrs().Name
		return nil
	}
	if err != nil {
		return err
	}
	if tap.Attrs().MasterIndex != br.Attrs().Index {
		if err := l.h.LinkSetMaster(tap, br); err != nil {
			return fmt.Errorf("attach %s: %w", dev, err)
		}
		if l.plugged[dev] {
			l.changed("tap %s was not in bridge %s: attached", dev, br.Attrs().Name)
		} else {
			l.changeCount.Add(1) // a new VIF plugged in: expected, not drift
		}
		l.log.Info("attached tap", "bridge", br.Attrs().Name, "device", dev)
	}
	if tap.Attrs().Flags&net.FlagUp == 0 {
		if err := l.h.LinkSetUp(tap); err != nil {
			return fmt.Errorf("set %s up: %w", dev, err)
		}
		if l.plugged[dev] {
			l.changed("tap %s was down: set up", dev)
		} else {
			l.changeCount.Add(1)
		}
	}
	l.attached[dev] = br.Attrs().Name
	l.plugged[dev] = true
	return nil
}

// ApplySysctls writes each sysctl whose value differs.
func (l *Links) ApplySysctls(ctx context.Context, sysctls []plan.Sysctl) error {
	changed, err := l.sysctls.Apply(ctx, sysctls)
	l.mu.Lock()
	for _, c := range changed {
		l.changed("%s", c)
	}
	l.mu.Unlock()
	return err
}

// ApplyPorts applies an incremental plan change (plan.Update) to the
// bridges' ports: each added tap is attached (one netlink lookup, or none
// if it is not plugged yet), each removed one forgotten. Bridges, uplinks,
// addresses and the other taps are trusted as last applied: the port
// watch and full applies correct them.
func (l *Links) ApplyPorts(ctx context.Context, changes []plan.PortChange) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, pc := range changes {
		for _, p := range pc.Removed {
			if l.ports[p.Device] == pc.Bridge {
				delete(l.ports, p.Device)
				delete(l.attached, p.Device)
				delete(l.plugged, p.Device)
			}
		}
		if len(pc.Added) == 0 {
			continue
		}
		br, err := l.h.LinkByName(pc.Bridge)
		if err != nil {
			errs = append(errs, fmt.Errorf("bridge %s: %w", pc.Bridge, err))
			continue
		}
		for _, p := range pc.Added {
			l.ports[p.Device] = pc.Bridge
			if err := l.attach(br, p.Device); err != nil {
				errs = append(errs, fmt.Errorf("bridge %s: %w", pc.Bridge, err))
			}
		}
	}
	return errors.Join(errs...)
}
