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

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addr4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func broadcastOf(p netip.Prefix) netip.Addr {
	return addr4(u32(p.Masked().Addr()) | ^uint32(0)>>p.Bits())
}

// plannedNetwork is one subnet to create.
type plannedNetwork struct {
	net      model.Network
	reserved map[netip.Addr]bool
	lowest   netip.Addr // addresses below it are reserved (dhcp_start)
}

// planNetworks validates req and carves its subnets; it touches no store.
func (m *Manager) planNetworks(req model.NetworkCreateRequest) ([]plannedNetwork, error) {
	rng, err := req.Check()
	if err != nil {
		return nil, err
	}
	kind := req.Kind
	if kind == "" {
		kind = model.KindFlatDHCP
	}
	label := strings.TrimSpace(req.Label)
	rangeSize := 1 << (32 - rng.Bits())
	num := req.NumNetworks
	if num == 0 {
		num = 1
	}
	if num < 1 {
		return nil, model.Errorf(model.ErrInvalid, "num_networks %d must be at least 1", num)
	}
	size := req.NetworkSize
	if size == 0 {
		// nova-manage's default: /24 subnets, or the whole range if smaller.
		size = min(256, rangeSize)
	}
	if bits.OnesCount(uint(size)) != 1 {
		return nil, model.Errorf(model.ErrInvalid, "network_size %d is not a power of two: use e.g. 256 for /24 subnets", size)
	}
	if size < 4 {
		return nil, model.Errorf(model.ErrInvalid, "network_size %d is too small: a network needs at least 4 addresses (/30: network, gateway, one instance, broadcast)", size)
	}
	if kind == model.KindVLAN && size < 8 {
		return nil, model.Errorf(model.ErrInvalid, "network_size %d is too small for a vlan network: it needs network, gateway, vpn, broadcast and instances (at least 8, a /29)", size)
	}
	if num*size > rangeSize {
		return nil, model.Errorf(model.ErrInvalid, "fixed_range_v4 %s has %d addresses, not enough for %d networks of %d: give a larger range or fewer/smaller networks", rng, rangeSize, num, size)
	}
	bridge := strings.TrimSpace(req.Bridge)
	if bridge == "" && kind != model.KindVLAN {
		bridge = m.opts.FlatNetworkBridge
	}
	if bridge == "" && kind != model.KindVLAN {
		return nil, model.Errorf(model.ErrInvalid, "bridge is required for %s networks: give one such as br100, or set flat_network_bridge for serve", kind)
	}
	if kind == model.KindVLAN {
		if req.VLAN == 0 {
			return nil, model.Errorf(model.ErrInvalid, "vlan networks need a vlan id (1..4094)")
		}
		if req.VLAN < 1 || req.VLAN+num-1 > 4094 {
			return nil, model.Errorf(model.ErrInvalid, "vlan %d..%d is outside 1..4094: choose a lower vlan or fewer networks", req.VLAN, req.VLAN+num-1)
		}
		if bridge != "" && num > 1 {
			return nil, model.Errorf(model.ErrInvalid, "one bridge %q for %d vlan networks: leave bridge empty to get br<vlan> per network", bridge, num)
		}
	} else if req.VLAN != 0 {
		return nil, model.Errorf(model.ErrInvalid, "vlan %d given for a %s network: vlan ids are for kind vlan only", req.VLAN, kind)
	}
	// Check has parsed them once already.
	dns1, _ := model.ParseOptAddr4("dns1", req.DNS1)
	dns2, _ := model.ParseOptAddr4("dns2", req.DNS2)
	gateway, _ := model.ParseOptAddr4("gateway", req.Gateway)
	dhcpStart, _ := model.ParseOptAddr4("dhcp_start", req.DHCPStart)
	if num > 1 && (gateway.IsValid() || dhcpStart.IsValid()) {
		return nil, model.Errorf(model.ErrInvalid, "gateway and dhcp_start can be given only with num_networks 1")
	}
	host := strings.TrimSpace(req.Host)
	if req.MultiHost && host != "" {
		return nil, model.Errorf(model.ErrInvalid, "host %q given for a multi-host network: every compute host serves its own instances; leave host empty", host)
	}
	if !req.MultiHost && host == "" {
		host = m.opts.NetworkHost
	}
	if !req.MultiHost && host == "" && kind != model.KindFlat {
		return nil, model.Errorf(model.ErrInvalid, "no network host: give host or set network_host in nova.conf")
	}
	if host != "" {
		if err := model.CheckHostName("host", host); err != nil {
			return nil, err
		}
	}
	prefixBits := 32 - bits.TrailingZeros(uint(size))
	var out []plannedNetwork
	for i := 0; i < num; i++ {
		base := u32(rng.Addr()) + uint32(i*size)
		p := netip.PrefixFrom(addr4(base), prefixBits)
		bc := broadcastOf(p)
		gw := gateway
		if !gw.IsValid() {
			gw = addr4(base + 1)
		}
		if !p.Contains(gw) || gw == p.Addr() || gw == bc {
			return nil, model.Errorf(model.ErrInvalid, "gateway %s is not a host address of %s: use one between %s and %s", gw, p, addr4(base+1), addr4(u32(bc)-1))
		}
		res := map[netip.Addr]bool{p.Addr(): true, gw: true, bc: true}
		vpn := netip.Addr{}
		if kind == model.KindVLAN {
			vpn = gw.Next()
			if vpn == bc {
				vpn = addr4(base + 2)
			}
			res[vpn] = true
		}
		ds := dhcpStart
		if !ds.IsValid() {
			ds = gw.Next()
			for res[ds] && ds != bc {
				ds = ds.Next()
			}
		}
		if !p.Contains(ds) || ds == p.Addr() || ds == bc || ds == gw {
			return nil, model.Errorf(model.ErrInvalid, "dhcp_start %s is not a free host address of %s: use one after the gateway and before %s", ds, p, bc)
		}
		if len(res) >= size {
			return nil, model.Errorf(model.ErrInvalid, "network %s leaves no address for instances: use a larger network_size", p)
		}
		n := model.Network{
			UUID: uuid.NewString(), Label: label, Kind: kind, CIDR: p, Gateway: gw, Broadcast: bc, DHCPStart: ds,
			DNS1: dns1, DNS2: dns2, Bridge: bridge, BridgeInterface: req.BridgeInterface,
			MultiHost: req.MultiHost, ProjectID: req.ProjectID, Host: host, MTU: req.MTU,
		}
		if num > 1 {
			n.Label = fmt.Sprintf("%s_%d", label, i)
		}
		if kind == model.KindVLAN {
			n.VLAN = req.VLAN + i
			if n.Bridge == "" {
				n.Bridge = fmt.Sprintf("br%d", n.VLAN)
			}
		}
		if req.MultiHost {
			n.Host = ""
		}
		out = append(out, plannedNetwork{net: n, reserved: res, lowest: ds})
	}
	return out, nil
}

// CreateNetworks is nova-manage network create: all subnets or none.
func (m *Manager) CreateNetworks(ctx context.Context, req model.NetworkCreateRequest) ([]model.Network, error) {
	plan, err := m.planNetworks(req)
	if err != nil {
		return nil, err
	}
	var out []model.Network
	err = m.update(ctx, func(tx *store.Tx, c *change) error {
		out = out[:0]
		// Overlap is a property of all networks and floating ranges
		// together: creations take turns.
		if err := tx.LockName(ctx, "address-space"); err != nil {
			return err
		}
		existing, err := tx.ListNetworks(ctx)
		if err != nil {
			return err
		}
		var hosts []string
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
			// An address must not be both fixed and floating (the
			// floating range create refuses the reverse).
			if k, err := tx.CountFloatings(ctx, store.FloatingFilter{From: pn.net.CIDR.Addr(), To: model.LastAddr(pn.net.CIDR)}); err != nil {
				return err
			} else if k > 0 {
				return model.Errorf(model.ErrConflict, "%s overlaps %d floating ip addresses: choose a range outside the floating ranges (see 'novanet floating list')", pn.net.CIDR, k)
			}
			hosts = append(hosts, pn.net.Host)
		}
		hosts, err = allHosts(ctx, tx, hosts...)
		if err != nil {
			return err
		}
		if err := c.bump(ctx, tx, hosts...); err != nil {
			return err
		}
		for _, pn := range plan {
			n, err := tx.InsertNetwork(ctx, pn.net)
			if store.IsUniqueViolation(err) {
				return model.Errorf(model.ErrConflict, "network %q (%s) conflicts with an existing network's label, range or vlan: %v", pn.net.Label, pn.net.CIDR, err)
			}
			if err != nil {
				return err
			}
			res, low := pn.reserved, pn.lowest
			err = tx.InsertFixedIPs(ctx, n.ID, n.CIDR, func(a netip.Addr) bool { return res[a] || a.Less(low) })
			if err != nil {
				return err
			}
			out = append(out, n)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, n := range out {
		m.log.Info("created network", "label", n.Label, "cidr", n.CIDR.String(), "kind", string(n.Kind), "host", n.Host)
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
