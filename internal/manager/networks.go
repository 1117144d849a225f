package manager

import (
	"context"
	"fmt"
	"math/bits"
	"net/netip"
	"strings"

	"github.com/google/uuid"

	"novanet/internal/model"
	"novanet/internal/store"
)

// plannedNetwork is one subnet to create.
type plannedNetwork struct {
	net      model.Network
	reserved map[netip.Addr]bool
	lowest   netip.Addr // addresses below it are reserved (dhcp_start)
}

// planNetworks validates req and carves its subnets; it touches no store.
func (m *Manager) planNetworks(req model.NetworkCreateRequest) ([]plannedNetwork, error) {
	spec, err := m.networkSpec(req)
	if err != nil {
		return nil, err
	}
	out := make([]plannedNetwork, 0, spec.num)
	for i := range spec.num {
		pn, err := spec.subnet(i)
		if err != nil {
			return nil, err
		}
		out = append(out, pn)
	}
	return out, nil
}

// networkSpec is a network create request with its defaults filled in
// and checked: how to carve the range and what each subnet gets.
type networkSpec struct {
	req                            model.NetworkCreateRequest
	rng                            netip.Prefix
	kind                           model.ManagerKind
	label, bridge, host            string
	num, size                      int
	dns1, dns2, gateway, dhcpStart netip.Addr
}

// networkSpec checks req and fills the defaults of nova-manage and of
// serve's options.
func (m *Manager) networkSpec(req model.NetworkCreateRequest) (networkSpec, error) {
	req = m.withCreateDefaults(req)
	rng, err := req.Check()
	if err != nil {
		return networkSpec{}, err
	}
	s := networkSpec{req: req, rng: rng, kind: req.Kind, label: strings.TrimSpace(req.Label)}
	if s.kind == "" {
		s.kind = model.KindFlatDHCP
	}
	if err := s.sizes(m.opts.NetworkSize); err != nil {
		return s, err
	}
	if err := s.bridgeAndVLAN(m.opts.FlatNetworkBridge); err != nil {
		return s, err
	}
	if err := s.addresses(); err != nil {
		return s, err
	}
	return s, s.networkHost(m.opts.NetworkHost)
}

// withCreateDefaults fills what req leaves empty from serve's options
// (fixed_range, num_networks, multi_host, flat_network_dns), as nova's
// create_networks did; network_size and flat_network_bridge are filled
// where they are checked.
func (m *Manager) withCreateDefaults(req model.NetworkCreateRequest) model.NetworkCreateRequest {
	if strings.TrimSpace(req.FixedRangeV4) == "" && m.opts.FixedRange.IsValid() {
		req.FixedRangeV4 = m.opts.FixedRange.String()
	}
	if req.NumNetworks == 0 {
		req.NumNetworks = m.opts.NumNetworks
	}
	// multi_host applies to requests that say neither multi_host nor a
	// host (a named host is a single-host network's).
	if req.MultiHost == nil && m.opts.MultiHost && strings.TrimSpace(req.Host) == "" {
		req.MultiHost = new(true)
	}
	if strings.TrimSpace(req.DNS1) == "" && m.opts.FlatNetworkDNS.IsValid() {
		req.DNS1 = m.opts.FlatNetworkDNS.String()
	}
	return req
}

// sizes fills and checks how many subnets of how many addresses
// (defaultSize, network_size, when the request gives none).
func (s *networkSpec) sizes(defaultSize int) error {
	rangeSize := 1 << (32 - s.rng.Bits())
	s.num = s.req.NumNetworks
	if s.num == 0 {
		s.num = 1
	}
	if s.num < 1 {
		return model.Errorf(model.ErrInvalid, "num_networks %d must be at least 1", s.num)
	}
	s.size = s.req.NetworkSize
	if s.size == 0 {
		// nova-manage's default: network_size (/24) subnets, or the
		// whole range if smaller.
		s.size = min(defaultSize, rangeSize)
	}
	if bits.OnesCount(uint(s.size)) != 1 {
		return model.Errorf(model.ErrInvalid, "network_size %d is not a power of two: use e.g. 256 for /24 subnets", s.size)
	}
	if s.size < 4 {
		return model.Errorf(model.ErrInvalid, "network_size %d is too small: a network needs at least 4 addresses (/30: network, gateway, one instance, broadcast)", s.size)
	}
	if s.kind == model.KindVLAN && s.size < 8 {
		return model.Errorf(model.ErrInvalid, "network_size %d is too small for a vlan network: it needs network, gateway, vpn, broadcast and instances (at least 8, a /29)", s.size)
	}
	if s.num*s.size > rangeSize {
		return model.Errorf(model.ErrInvalid, "fixed_range_v4 %s has %d addresses, not enough for %d networks of %d: give a larger range or fewer/smaller networks", s.rng, rangeSize, s.num, s.size)
	}
	return nil
}

// bridgeAndVLAN fills the bridge (flat_network_bridge by default) and
// checks the vlan ids against the kind.
func (s *networkSpec) bridgeAndVLAN(flatNetworkBridge string) error {
	s.bridge = strings.TrimSpace(s.req.Bridge)
	vlan, num := s.req.VLAN, s.num
	if s.kind != model.KindVLAN {
		if s.bridge == "" {
			s.bridge = flatNetworkBridge
		}
		if s.bridge == "" {
			return model.Errorf(model.ErrInvalid, "bridge is required for %s networks: give one such as br100, or set flat_network_bridge for serve", s.kind)
		}
		if vlan != 0 {
			return model.Errorf(model.ErrInvalid, "vlan %d given for a %s network: vlan ids are for kind vlan only", vlan, s.kind)
		}
		return nil
	}
	if vlan == 0 {
		return model.Errorf(model.ErrInvalid, "vlan networks need a vlan id (%d..%d)", model.MinVLAN, model.MaxVLAN)
	}
	if vlan < model.MinVLAN || vlan+num-1 > model.MaxVLAN {
		return model.Errorf(model.ErrInvalid, "vlan %d..%d is outside %d..%d: choose a lower vlan or fewer networks", vlan, vlan+num-1, model.MinVLAN, model.MaxVLAN)
	}
	if s.bridge != "" && num > 1 {
		return model.Errorf(model.ErrInvalid, "one bridge %q for %d vlan networks: leave bridge empty to get br<vlan> per network", s.bridge, num)
	}
	return nil
}

// addresses takes the optional addresses of the request.
func (s *networkSpec) addresses() error {
	// Check has parsed them once already.
	s.dns1, _ = model.ParseOptAddr4("dns1", s.req.DNS1)
	s.dns2, _ = model.ParseOptAddr4("dns2", s.req.DNS2)
	s.gateway, _ = model.ParseOptAddr4("gateway", s.req.Gateway)
	s.dhcpStart, _ = model.ParseOptAddr4("dhcp_start", s.req.DHCPStart)
	if s.num > 1 && (s.gateway.IsValid() || s.dhcpStart.IsValid()) {
		return model.Errorf(model.ErrInvalid, "gateway and dhcp_start can be given only with num_networks 1")
	}
	return nil
}

// networkHost fills the single-host network host (network_host by
// default); a multi-host network has none.
func (s *networkSpec) networkHost(networkHost string) error {
	s.host = strings.TrimSpace(s.req.Host)
	if s.req.IsMultiHost() && s.host != "" {
		return model.Errorf(model.ErrInvalid, "host %q given for a multi-host network: every compute host serves its own instances; leave host empty", s.host)
	}
	if !s.req.IsMultiHost() && s.host == "" {
		s.host = networkHost
	}
	if !s.req.IsMultiHost() && s.host == "" && s.kind != model.KindFlat {
		return model.Errorf(model.ErrInvalid, "no network host: give host or set network_host in nova.conf")
	}
	if s.host != "" {
		return model.CheckHostName("host", s.host)
	}
	return nil
}

// subnet carves the i-th subnet: its prefix, gateway, reserved
// addresses and first DHCP address.
func (s networkSpec) subnet(i int) (plannedNetwork, error) {
	base := model.Addr4Uint32(s.rng.Addr()) + uint32(i*s.size)
	p := netip.PrefixFrom(model.Uint32Addr4(base), 32-bits.TrailingZeros(uint(s.size)))
	bc := model.LastAddr(p)
	gw := s.gateway
	if !gw.IsValid() {
		gw = model.Uint32Addr4(base + 1)
	}
	if !p.Contains(gw) || gw == p.Addr() || gw == bc {
		return plannedNetwork{}, model.Errorf(model.ErrInvalid, "gateway %s is not a host address of %s: use one between %s and %s", gw, p, model.Uint32Addr4(base+1), model.AddrAdd(bc, -1))
	}
	res := map[netip.Addr]bool{p.Addr(): true, gw: true, bc: true}
	if s.kind == model.KindVLAN {
		vpn := gw.Next()
		if vpn == bc {
			vpn = model.Uint32Addr4(base + 2)
		}
		res[vpn] = true
	}
	ds := s.dhcpStart
	if !ds.IsValid() {
		ds = gw.Next()
		for res[ds] && ds != bc {
			ds = ds.Next()
		}
	}
	if !p.Contains(ds) || ds == p.Addr() || ds == bc || ds == gw {
		return plannedNetwork{}, model.Errorf(model.ErrInvalid, "dhcp_start %s is not a free host address of %s: use one after the gateway and before %s", ds, p, bc)
	}
	if len(res) >= s.size {
		return plannedNetwork{}, model.Errorf(model.ErrInvalid, "network %s leaves no address for instances: use a larger network_size", p)
	}
	return plannedNetwork{net: s.network(i, p, gw, bc, ds), reserved: res, lowest: ds}, nil
}

// network is the i-th subnet's row.
func (s networkSpec) network(i int, p netip.Prefix, gw, bc, ds netip.Addr) model.Network {
	n := model.Network{
		UUID: uuid.NewString(), Label: s.label, Kind: s.kind, CIDR: p, Gateway: gw, Broadcast: bc, DHCPStart: ds,
		DNS1: s.dns1, DNS2: s.dns2, Bridge: s.bridge, BridgeInterface: s.req.BridgeInterface,
		MultiHost: s.req.IsMultiHost(), ProjectID: s.req.ProjectID, Host: s.host, MTU: s.req.MTU,
	}
	if s.num > 1 {
		n.Label = fmt.Sprintf("%s_%d", s.label, i)
	}
	if s.kind == model.KindVLAN {
		n.VLAN = s.req.VLAN + i
		if n.Bridge == "" {
			n.Bridge = fmt.Sprintf("br%d", n.VLAN)
		}
	}
	if s.req.IsMultiHost() {
		n.Host = ""
	}
	return n
}

// CreateNetworks is nova-manage network create: all subnets or none.
func (m *Manager) CreateNetworks(ctx context.Context, req model.NetworkCreateRequest) ([]model.Network, error) {
	plan, err := m.planNetworks(req)
	if err != nil {
		return nil, err
	}
	var out []model.Network
	err = m.update(ctx, func(tx *store.Tx, c *change) error {
		// Overlap is a property of all networks and floating ranges
		// together: creations take turns.
		if err := tx.LockName(ctx, "address-space"); err != nil {
			return err
		}
		if err := checkAddressSpace(ctx, tx, plan); err != nil {
			return err
		}
		hosts := make([]string, 0, len(plan))
		for _, pn := range plan {
			hosts = append(hosts, pn.net.Host)
		}
		hosts, err := allHosts(ctx, tx, hosts...)
		if err != nil {
			return err
		}
		if err := c.bump(ctx, tx, hosts...); err != nil {
			return err
		}
		out, err = insertPlanned(ctx, tx, plan)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, n := range out {
		m.log.Info("created network", "label", n.Label, "cidr", n.CIDR.String(), "kind", string(n.Kind), "host", n.Host)
	}
	return out, nil
}

// checkAddressSpace refuses planned networks that overlap each other, an
// existing network or a floating range, or reuse a label or vlan.
func checkAddressSpace(ctx context.Context, tx *store.Tx, plan []plannedNetwork) error {
	existing, err := tx.ListNetworks(ctx)
	if err != nil {
		return err
	}
	for i, pn := range plan {
		for _, e := range existing {
			if e.CIDR.Overlaps(pn.net.CIDR) {
				return model.Errorf(model.ErrConflict, "%s overlaps network %q (%s): choose a range that does not overlap", pn.net.CIDR, e.Label, e.CIDR)
			}
			if e.Label == pn.net.Label {
				return model.Errorf(model.ErrConflict, "a network labelled %q exists (%s): choose another label", e.Label, e.CIDR)
			}
			if pn.net.VLAN != 0 && e.VLAN == pn.net.VLAN {
				return model.Errorf(model.ErrConflict, "vlan %d is used by network %q: choose another vlan", e.VLAN, e.Label)
			}
		}
		for _, o := range plan[:i] {
			if o.net.CIDR.Overlaps(pn.net.CIDR) {
				return model.Errorf(model.ErrConflict, "new networks %s and %s overlap", o.net.CIDR, pn.net.CIDR)
			}
		}
		// An address must not be both fixed and floating (the floating
		// range create refuses the reverse).
		if k, err := tx.CountFloatings(ctx, store.FloatingFilter{From: pn.net.CIDR.Addr(), To: model.LastAddr(pn.net.CIDR)}); err != nil {
			return err
		} else if k > 0 {
			return model.Errorf(model.ErrConflict, "%s overlaps %d floating ip addresses: choose a range outside the floating ranges (see 'novanet floating list')", pn.net.CIDR, k)
		}
	}
	return nil
}

// insertPlanned inserts the networks and their fixed address rows.
func insertPlanned(ctx context.Context, tx *store.Tx, plan []plannedNetwork) ([]model.Network, error) {
	out := make([]model.Network, 0, len(plan))
	for _, pn := range plan {
		n, err := tx.InsertNetwork(ctx, pn.net)
		if store.IsUniqueViolation(err) {
			return nil, model.Errorf(model.ErrConflict, "network %q (%s) conflicts with an existing network's label, range or vlan: %v", pn.net.Label, pn.net.CIDR, err)
		}
		if err != nil {
			return nil, err
		}
		res, low := pn.reserved, pn.lowest
		if err := tx.InsertFixedIPs(ctx, n.ID, n.CIDR, func(a netip.Addr) bool { return res[a] || a.Less(low) }); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// visibleNetwork: flat networks are shared, vlan networks belong to a project.
func visibleNetwork(scope model.Scope, n model.Network) bool {
	return scope.Admin || n.ProjectID == "" || n.ProjectID == scope.ProjectID
}

// ListNetworks lists the networks the scope may use.
func (m *Manager) ListNetworks(ctx context.Context, scope model.Scope) ([]model.Network, error) {
	out := []model.Network{}
	err := m.view(ctx, func(tx *store.Tx) error {
		ns, err := tx.ListNetworks(ctx)
		out = out[:0]
		for _, n := range ns {
			if visibleNetwork(scope, n) {
				out = append(out, n)
			}
		}
		return err
	})
	return out, err
}

// GetNetwork resolves an id, uuid or label.
func (m *Manager) GetNetwork(ctx context.Context, scope model.Scope, ref string) (model.Network, error) {
	var n model.Network
	err := m.view(ctx, func(tx *store.Tx) error {
		var err error
		n, err = tx.FindNetwork(ctx, ref)
		if err == nil && !visibleNetwork(scope, n) {
			return model.Errorf(model.ErrNotFound, "network %q not found", ref)
		}
		return err
	})
	return n, err
}

// DeleteNetwork removes a network none of whose addresses is in use.
func (m *Manager) DeleteNetwork(ctx context.Context, ref string) error {
	return m.update(ctx, func(tx *store.Tx, c *change) error {
		n, err := tx.FindNetwork(ctx, ref)
		if err != nil {
			return err
		}
		// Exclusive before counting usage: a boot into it holds it
		// shared, finishes first and is counted.
		if err := tx.LockNetwork(ctx, n.ID, true); err != nil {
			return err
		}
		used, err := tx.NetworkUsage(ctx, n.ID)
		if err != nil {
			return err
		}
		if used > 0 {
			return model.Errorf(model.ErrConflict, "network %q (%s) has %d addresses held by instances or hosts: delete its instances first (or wait for fixed_ip_disassociate_timeout)", n.Label, n.CIDR, used)
		}
		hosts, err := allHosts(ctx, tx, n.Host)
		if err != nil {
			return err
		}
		if err := c.bump(ctx, tx, hosts...); err != nil {
			return err
		}
		return tx.DeleteNetwork(ctx, n.ID)
	})
}

// GetFixedIP describes one address.
func (m *Manager) GetFixedIP(ctx context.Context, addr netip.Addr) (model.FixedIPDetail, error) {
	var d model.FixedIPDetail
	err := m.view(ctx, func(tx *store.Tx) error {
		f, err := tx.FixedIPByAddress(ctx, addr)
		if err != nil {
			return err
		}
		n, err := tx.NetworkByID(ctx, f.NetworkID)
		if err != nil {
			return err
		}
		d = model.FixedIPDetail{FixedIP: f, CIDR: n.CIDR, Host: f.Host}
		if f.InstanceUUID != "" {
			if inst, err := tx.Instance(ctx, f.InstanceUUID); err == nil {
				d.Hostname, d.Host = inst.Hostname, inst.Host
			}
		}
		return nil
	})
	return d, err
}

// SetFixedIPReserved reserves or unreserves an address.
func (m *Manager) SetFixedIPReserved(ctx context.Context, addr netip.Addr, reserved bool) error {
	return m.update(ctx, func(tx *store.Tx, c *change) error {
		f, err := tx.LockFixedIPByAddress(ctx, addr)
		if err != nil {
			return err
		}
		if f.Reserved == reserved {
			return nil
		}
		n, err := tx.NetworkByID(ctx, f.NetworkID)
		if err != nil {
			return err
		}
		if reserved && (f.Allocated || f.InstanceUUID != "" || f.Host != "" || f.Leased) {
			return model.Errorf(model.ErrConflict, "fixed ip %s is in use (instance %q, host %q, leased %v): delete the instance first", addr, f.InstanceUUID, f.Host, f.Leased)
		}
		if !reserved {
			switch {
			case addr == n.CIDR.Addr():
				return model.Errorf(model.ErrInvalid, "%s is the network address of %s and stays reserved", addr, n.CIDR)
			case addr == n.Gateway:
				return model.Errorf(model.ErrInvalid, "%s is the gateway of %s and stays reserved", addr, n.CIDR)
			case addr == n.Broadcast:
				return model.Errorf(model.ErrInvalid, "%s is the broadcast address of %s and stays reserved", addr, n.CIDR)
			case n.Kind == model.KindVLAN && addr == n.Gateway.Next():
				return model.Errorf(model.ErrInvalid, "%s is the vpn address of %s and stays reserved", addr, n.CIDR)
			}
		}
		return tx.SetFixedIPReserved(ctx, f.ID, reserved)
	})
}
