package manager

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"time"

	"novanet/internal/model"
	"novanet/internal/store"
)

// HostState computes host's desired state from one consistent snapshot.
func (m *Manager) HostState(ctx context.Context, host string) (model.HostState, error) {
	if err := model.CheckHostName("host", host); err != nil {
		return model.HostState{}, err
	}
	var hs model.HostState
	err := m.view(ctx, func(tx *store.Tx) error {
		var err error
		hs, err = m.hostState(ctx, tx, host)
		return err
	})
	return hs, err
}

func (m *Manager) hostState(ctx context.Context, tx *store.Tx, host string) (model.HostState, error) {
	hs := model.HostState{Host: host, Networks: []model.HostNetwork{}, FloatingIPs: []model.HostFloatingIP{}, SecurityGroups: []model.HostSecurityGroup{}}
	row, err := tx.HostRow(ctx, host)
	if err != nil {
		return hs, err
	}
	hs.Revision = row.Revision
	nets, err := tx.ListNetworks(ctx)
	if err != nil {
		return hs, err
	}
	hs.Options = m.clusterOptions(nets)
	facts, err := readHostFacts(ctx, tx, host)
	if err != nil {
		return hs, err
	}
	groupSet := map[int64]bool{}
	for _, n := range nets {
		hn, ok, err := hostNetworkWhole(ctx, tx, host, n, facts, groupSet)
		if err != nil {
			return hs, err
		}
		if ok {
			hs.Networks = append(hs.Networks, hn)
		}
	}
	if hs.FloatingIPs, err = hostFloatingIPs(ctx, tx, host); err != nil {
		return hs, err
	}
	if hs.SecurityGroups, err = hostSecurityGroups(ctx, tx, groupSet); err != nil {
		return hs, err
	}
	return hs, m.hostMetadata(ctx, tx, &hs)
}

// clusterOptions are the options every host's state carries.
func (m *Manager) clusterOptions(nets []model.Network) model.ClusterOptions {
	o := model.ClusterOptions{
		DHCPDomain: m.opts.DHCPDomain, DHCPLeaseTime: m.opts.DHCPLeaseTime,
		ForceDHCPRelease: m.opts.ForceDHCPRelease, AllowSameNetTraffic: m.opts.AllowSameNetTraffic,
		FixedRanges: []netip.Prefix{},
	}
	for _, n := range nets {
		o.FixedRanges = append(o.FixedRanges, n.CIDR)
	}
	return o
}

// hostFacts are what decides a host's part in every network: its local
// ports, its own (gateway) addresses and its pending releases, by network.
type hostFacts struct {
	local    map[int64][]store.Port
	own      map[int64]netip.Addr
	releases map[int64][]model.DHCPRelease
}

func readHostFacts(ctx context.Context, tx *store.Tx, host string) (hostFacts, error) {
	f := hostFacts{local: map[int64][]store.Port{}}
	local, err := tx.Ports(ctx, 0, host)
	if err != nil {
		return f, err
	}
	for _, p := range local {
		f.local[p.NetworkID] = append(f.local[p.NetworkID], p)
	}
	if f.own, err = hostOwnAddresses(ctx, tx, host); err != nil {
		return f, err
	}
	f.releases, err = hostReleases(ctx, tx, host)
	return f, err
}

func hostOwnAddresses(ctx context.Context, tx *store.Tx, host string) (map[int64]netip.Addr, error) {
	own, err := tx.FixedIPsByHost(ctx, host)
	out := map[int64]netip.Addr{}
	for _, f := range own {
		out[f.NetworkID] = f.Address
	}
	return out, err
}

func hostReleases(ctx context.Context, tx *store.Tx, host string) (map[int64][]model.DHCPRelease, error) {
	rels, err := tx.Releases(ctx, host)
	out := map[int64][]model.DHCPRelease{}
	for _, r := range rels {
		out[r.NetworkID] = append(out[r.NetworkID], model.DHCPRelease{MAC: r.MAC, Address: r.Address})
	}
	return out, err
}

// hostNetworkHeader is network n as seen by host, without its lists, and
// whether host takes part in it at all: a single-host network on its
// network host and where it has local instances; a multi-host network
// where the host has its own address, local instances or releases.
func hostNetworkHeader(host string, n model.Network, hasLocal bool, own netip.Addr, hasReleases bool) (model.HostNetwork, bool) {
	dhcp := n.Kind != model.KindFlat
	hn := model.HostNetwork{Network: n, Instances: []model.HostInstance{}, DHCPHosts: []model.DHCPHost{}, Releases: []model.DHCPRelease{}}
	if !n.MultiHost {
		isNetHost := n.Host == host
		if !isNetHost && !hasLocal {
			return hn, false
		}
		if dhcp {
			hn.DHCPServer = n.Gateway
		}
		if isNetHost && dhcp {
			hn.BridgeAddress, hn.ServesDHCP, hn.NAT = n.Gateway, true, true
		}
		return hn, true
	}
	if !own.IsValid() && !hasLocal && !hasReleases {
		return hn, false
	}
	if own.IsValid() && dhcp {
		hn.BridgeAddress, hn.ServesDHCP, hn.NAT, hn.DHCPServer = own, true, true, own
	}
	return hn, true
}

// servedBy reports whether host's dnsmasq (and metadata) serves port p
// of network hn: all of a single-host network's ports on its network
// host, the local ones of a multi-host network.
func servedBy(hn model.HostNetwork, host string, p store.Port) bool {
	return hn.ServesDHCP && (!hn.Network.MultiHost || p.Host == host)
}

// hostNetworkWhole is network n as seen by host with all its lists;
// groupSet gains the groups of its local instances.
func hostNetworkWhole(ctx context.Context, tx *store.Tx, host string, n model.Network, f hostFacts, groupSet map[int64]bool) (model.HostNetwork, bool, error) {
	lp := f.local[n.ID]
	hn, ok := hostNetworkHeader(host, n, len(lp) > 0, f.own[n.ID], len(f.releases[n.ID]) > 0)
	if !ok {
		return hn, false, nil
	}
	if hn.ServesDHCP {
		served := lp
		if !n.MultiHost {
			var err error
			if served, err = tx.Ports(ctx, n.ID, ""); err != nil {
				return hn, false, err
			}
		}
		for _, p := range served {
			hn.DHCPHosts = append(hn.DHCPHosts, dhcpHostEntry(p))
		}
		hn.Releases = append(hn.Releases, f.releases[n.ID]...)
	}
	for _, p := range lp {
		inst, err := hostInstance(ctx, tx, p)
		if err != nil {
			return hn, false, err
		}
		for _, g := range inst.SecurityGroups {
			groupSet[g] = true
		}
		hn.Instances = append(hn.Instances, inst)
	}
	sort.Slice(hn.DHCPHosts, func(i, j int) bool { return hn.DHCPHosts[i].Address.Less(hn.DHCPHosts[j].Address) })
	sort.Slice(hn.Instances, func(i, j int) bool { return hn.Instances[i].Address.Less(hn.Instances[j].Address) })
	sortReleases(hn.Releases)
	return hn, true, nil
}

func sortReleases(rs []model.DHCPRelease) {
	sort.Slice(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		return a.Address.Less(b.Address) || a.Address == b.Address && a.MAC < b.MAC
	})
}

func dhcpHostEntry(p store.Port) model.DHCPHost {
	return model.DHCPHost{MAC: p.MAC, Hostname: p.Hostname, Address: p.Address.Address}
}

// hostInstance is local port p's entry, with its instance's groups.
func hostInstance(ctx context.Context, tx *store.Tx, p store.Port) (model.HostInstance, error) {
	gs, err := tx.InstanceGroupIDs(ctx, p.InstanceUUID)
	if err != nil {
		return model.HostInstance{}, err
	}
	if gs == nil {
		gs = []int64{}
	}
	return model.HostInstance{UUID: p.InstanceUUID, VIFID: p.VIF.ID, Hostname: p.Hostname, ProjectID: p.ProjectID,
		Address: p.Address.Address, MAC: p.MAC, Device: p.Device, SecurityGroups: gs}, nil
}

func hostFloatingIPs(ctx context.Context, tx *store.Tx, host string) ([]model.HostFloatingIP, error) {
	fls, err := tx.HostFloatings(ctx, host)
	out := []model.HostFloatingIP{}
	for _, f := range fls {
		out = append(out, hostFloatingEntry(f))
	}
	return out, err
}

func hostFloatingEntry(f store.Floating) model.HostFloatingIP {
	return model.HostFloatingIP{Address: f.Address, FixedAddress: f.FixedAddress, Interface: f.Interface, InstanceUUID: f.InstanceUUID}
}

// hostSecurityGroups are the groups of local instances (groupSet) plus
// the groups their rules name as sources (for their member addresses),
// by id.
func hostSecurityGroups(ctx context.Context, tx *store.Tx, groupSet map[int64]bool) ([]model.HostSecurityGroup, error) {
	for g := range groupSet {
		rules, err := tx.Rules(ctx, g)
		if err != nil {
			return nil, err
		}
		for _, r := range rules {
			if r.SourceGroupID != 0 {
				groupSet[r.SourceGroupID] = true
			}
		}
	}
	ids := make([]int64, 0, len(groupSet))
	for g := range groupSet {
		ids = append(ids, g)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	out := []model.HostSecurityGroup{}
	for _, id := range ids {
		g, err := hostSecurityGroup(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// hostSecurityGroup is one group with all its member addresses, sorted.
func hostSecurityGroup(ctx context.Context, tx *store.Tx, id int64) (model.HostSecurityGroup, error) {
	g, err := tx.SecurityGroup(ctx, id)
	if err != nil {
		return model.HostSecurityGroup{}, err
	}
	members, err := tx.GroupMemberAddresses(ctx, id)
	if err != nil {
		return model.HostSecurityGroup{}, err
	}
	if members == nil {
		members = []netip.Addr{}
	}
	sort.Slice(members, func(i, j int) bool { return members[i].Less(members[j]) })
	return model.HostSecurityGroup{SecurityGroup: g, Members: members}, nil
}

// WaitHost blocks until host's revision exceeds after or ctx ends, and
// returns the current revision (with a nil error when ctx ended: a
// long-poll timing out is not a failure). Changes made by this process
// wake it at once; changes made by other servers sharing the store are
// seen by polling every PollInterval.
func (m *Manager) WaitHost(ctx context.Context, host string, after int64) (int64, error) {
	return m.waitFor(ctx, host, func(rev int64) bool { return rev > after })
}

// waitRevision is WaitHost waiting for any other revision than after (an
// agent ahead of the store, restored from a backup, is answered too).
func (m *Manager) waitRevision(ctx context.Context, host string, after int64) (int64, error) {
	return m.waitFor(ctx, host, func(rev int64) bool { return rev != after })
}

func (m *Manager) waitFor(ctx context.Context, host string, done func(rev int64) bool) (int64, error) {
	if err := model.CheckHostName("host", host); err != nil {
		return 0, err
	}
	if err := m.ensureHost(ctx, host); err != nil {
		if ctx.Err() != nil {
			return 0, nil
		}
		return 0, err
	}
	tick := time.NewTicker(m.opts.PollInterval)
	defer tick.Stop()
	for {
		ch := m.watchChan(host)
		rev, err := m.st.Revision(ctx, host)
		if err != nil {
			if ctx.Err() != nil {
				return rev, nil
			}
			return rev, err
		}
		if done(rev) {
			return rev, nil
		}
		select {
		case <-ctx.Done():
			return rev, nil
		case <-ch:
		case <-tick.C:
		}
	}
}

// ReportApplied records what an agent applied.
func (m *Manager) ReportApplied(ctx context.Context, host string, r model.AppliedReport) error {
	if err := model.CheckHostName("host", host); err != nil {
		return err
	}
	if err := r.Check(); err != nil {
		return err
	}
	return m.st.Update(ctx, func(tx *store.Tx) error { return tx.ReportApplied(ctx, host, r) })
}

// RecordLease applies a dnsmasq lease event.
func (m *Manager) RecordLease(ctx context.Context, ev model.LeaseEvent) error {
	ev, err := ev.Check()
	if err != nil {
		return err
	}
	mac := ev.MAC
	return m.update(ctx, func(tx *store.Tx, c *change) error {
		// Locked: a boot claiming the address or the periodic task
		// freeing it must not interleave with this event's decision.
		f, err := tx.LockFixedIPByAddress(ctx, ev.Address)
		if err != nil {
			return err
		}
		var vifMAC string
		if f.VIFID != 0 {
			v, err := tx.VIFByID(ctx, f.VIFID)
			if err != nil {
				return err
			}
			vifMAC = v.MAC
		}
		if err := checkLeaseReporter(ctx, tx, f, ev.Host); err != nil {
			return err
		}
		switch ev.Action {
		case model.LeaseAdd, model.LeaseOld:
			if vifMAC != mac {
				if vifMAC == "" {
					return model.Errorf(model.ErrConflict, "lease of %s to %s: the address belongs to no interface; release it from dnsmasq (dhcp_release)", ev.Address, mac)
				}
				return model.Errorf(model.ErrConflict, "lease of %s to %s does not match its interface's MAC %s: a stale lease; release it from dnsmasq (dhcp_release)", ev.Address, mac, vifMAC)
			}
			if f.Leased {
				return nil
			}
			return tx.SetFixedIPLeased(ctx, f.ID, true)
		case model.LeaseDel:
			hosts, err := tx.DeleteReleases(ctx, ev.Host, ev.Address, mac)
			if err != nil {
				return err
			}
			for _, h := range hosts {
				c.touch(h, scopeReleases(f.NetworkID))
			}
			if err := c.bump(ctx, tx, hosts...); err != nil {
				return err
			}
			if vifMAC != mac {
				return nil // an old lease of an address that moved on
			}
			if !f.Allocated && f.InstanceUUID != "" {
				return tx.DisassociateFixedIP(ctx, f)
			}
			return tx.SetFixedIPLeased(ctx, f.ID, false)
		default:
			// ev.Check admits only the cases above: a new action
			// needs its handling here.
			return fmt.Errorf("lease action %q passed the check but has no handling in RecordLease", ev.Action)
		}
	})
}

// checkLeaseReporter refuses a lease event about an address that the
// reporting host's dnsmasq does not serve: a compromised compute host's
// agent must not mark another host's addresses leased, nor free an
// address (with del) whose real lease lives on elsewhere. The server of
// an address is its network's host, or on a multi-host network the host
// its VIF was booted on (kept with the VIF, which outlives the instance
// until the address is disassociated). An address without a VIF on a
// multi-host network has no server to check: a del of it only drops the
// reporter's own pending releases.
func checkLeaseReporter(ctx context.Context, tx *store.Tx, f model.FixedIP, reporter string) error {
	n, err := tx.NetworkByID(ctx, f.NetworkID)
	if err != nil {
		return err
	}
	server := n.Host
	if n.MultiHost {
		server = ""
		if f.VIFID != 0 {
			if server, err = tx.VIFDHCPHost(ctx, f.VIFID); err != nil {
				return err
			}
		}
	}
	if server != "" && server != reporter {
		return model.Errorf(model.ErrForbidden, "host %q does not serve address %s: an agent may report only the leases of its own host's dnsmasq", reporter, f.Address)
	}
	return nil
}

// Leases returns what host's dnsmasq on bridge should believe it leased:
// the allocated or leased addresses it serves, for `dhcpbridge init`.
func (m *Manager) Leases(ctx context.Context, host, bridge string) ([]model.Lease, error) {
	if err := model.CheckHostName("host", host); err != nil {
		return nil, err
	}
	if err := model.CheckIfName("bridge", bridge); err != nil {
		return nil, err
	}
	out := []model.Lease{}
	err := m.view(ctx, func(tx *store.Tx) error {
		out = out[:0]
		nets, err := tx.ListNetworks(ctx)
		if err != nil {
			return err
		}
		for _, n := range nets {
			if n.Bridge != bridge || n.Kind == model.KindFlat || (!n.MultiHost && n.Host != host) {
				continue
			}
			rows, err := tx.LeaseRows(ctx, n.ID)
			if err != nil {
				return err
			}
			for _, r := range rows {
				// Multi-host: only this host's instances (a deleted
				// instance's lingering lease has no host to attribute).
				if n.MultiHost && r.Host != host {
					continue
				}
				out = append(out, model.Lease{MAC: r.MAC, Address: r.Address, Hostname: r.Hostname})
			}
		}
		return nil
	})
	return out, err
}

// RunPeriodic runs the periodic tasks every PeriodicInterval until ctx ends.
func (m *Manager) RunPeriodic(ctx context.Context) {
	t := time.NewTicker(m.opts.PeriodicInterval)
	defer t.Stop()
	for {
		if err := m.Periodic(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("periodic tasks", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Periodic runs the periodic tasks once: it disassociates fixed IPs
// deallocated longer than FixedIPDisassociateTimeout ago, and drops
// pending DHCP releases older than the lease time (dnsmasq has expired
// those leases by then).
//
// Unlike nova, an address dnsmasq still holds a lease for is not handed
// back at the timeout: the next VM would be refused by dnsmasq ("address
// in use") until the old lease expired. Its `del` event at expiry frees it
// instead; only if that never comes (dnsmasq or its host gone) does the
// address come back, two lease times after the timeout.
func (m *Manager) Periodic(ctx context.Context) error {
	now := time.Now()
	cutoff := now.Add(-m.opts.FixedIPDisassociateTimeout).UnixMicro()
	leasedCutoff := now.Add(-m.opts.FixedIPDisassociateTimeout - 2*time.Duration(m.opts.DHCPLeaseTime)*time.Second).UnixMicro()
	for {
		var n int
		err := m.update(ctx, func(tx *store.Tx, c *change) error {
			stale, err := tx.StaleFixedIPs(ctx, cutoff, leasedCutoff, 500)
			n = len(stale)
			for _, f := range stale {
				if err := tx.DisassociateFixedIP(ctx, f); err != nil {
					return err
				}
			}
			return err
		})
		if err != nil {
			return err
		}
		if n > 0 {
			m.log.Info("disassociated stale fixed ips", "count", n)
		}
		if n < 500 {
			break
		}
	}
	if err := m.pruneHostChanges(ctx); err != nil {
		return err
	}
	relCutoff := now.Add(-time.Duration(m.opts.DHCPLeaseTime) * time.Second).UnixMicro()
	return m.update(ctx, func(tx *store.Tx, c *change) error {
		hosts, err := tx.ExpireReleases(ctx, relCutoff)
		if err != nil {
			return err
		}
		return c.bump(ctx, tx, hosts...)
	})
}
