package manager

import (
	"context"
	"net/netip"
	"slices"
	"sort"
	"time"

	"novanet/internal/model"
	"novanet/internal/store"
)

// maxDeltaScopes bounds the change log range a delta is built from: past
// it re-reading the touched items costs about what the whole state does,
// and the agent gets the state instead.
const maxDeltaScopes = 300

// keepChangeRevisions is how many revisions of each host's change log the
// periodic task keeps; an agent further behind gets the whole state.
const keepChangeRevisions = 1000

// HostStateDelta returns what changed in host's state since revision
// from (model.HostStateDelta), read from one snapshot.
func (m *Manager) HostStateDelta(ctx context.Context, host string, from int64) (model.HostStateDelta, error) {
	if err := model.CheckHostName("host", host); err != nil {
		return model.HostStateDelta{}, err
	}
	var d model.HostStateDelta
	err := m.view(ctx, func(tx *store.Tx) error {
		var err error
		d, err = m.hostStateDelta(ctx, tx, host, from)
		return err
	})
	return d, err
}

// WatchHost blocks as WaitHost does until host's revision differs from
// after (or ctx ends), then returns what changed since after: empty when
// the poll timed out, the whole state when the change log cannot say.
func (m *Manager) WatchHost(ctx context.Context, host string, after int64) (model.HostStateDelta, error) {
	if _, err := m.waitRevision(ctx, host, after); err != nil {
		return model.HostStateDelta{}, err
	}
	// Read from one snapshot whether the poll saw a change or its
	// deadline passed (a change may have come in meanwhile): the answer
	// still gets read after the poll's own context ended.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return m.HostStateDelta(rctx, host, after)
}

func (m *Manager) hostStateDelta(ctx context.Context, tx *store.Tx, host string, from int64) (model.HostStateDelta, error) {
	row, err := tx.HostRow(ctx, host)
	if err != nil {
		return model.HostStateDelta{}, err
	}
	d := model.HostStateDelta{Host: host, From: from, To: row.Revision}
	if from == d.To {
		return d, nil
	}
	whole := func() (model.HostStateDelta, error) {
		hs, err := m.hostState(ctx, tx, host)
		d.Full, d.To = &hs, hs.Revision
		return d, err
	}
	if from <= 0 || from > d.To {
		return whole()
	}
	cs, covered, err := tx.HostChanges(ctx, host, from, d.To)
	if err != nil {
		return d, err
	}
	if int64(covered) != d.To-from || len(cs) > maxDeltaScopes {
		return whole() // pruned, or too much changed
	}
	sc, err := parseScopes(cs)
	if err != nil {
		return d, err
	}
	if sc.all {
		return whole()
	}
	if err := m.deltaNetworks(ctx, tx, host, sc, &d); err != nil {
		return d, err
	}
	if err := deltaGroups(ctx, tx, host, sc, &d); err != nil {
		return d, err
	}
	return d, deltaFloatingIPs(ctx, tx, host, sc, &d)
}

// deltaNetworks adds the touched networks: each with its header and
// releases as they are now, and its touched VIFs' entries (or their
// removal); a network host no longer takes part in is removed.
func (m *Manager) deltaNetworks(ctx context.Context, tx *store.Tx, host string, sc parsedScopes, d *model.HostStateDelta) error {
	if len(sc.networks) == 0 {
		return nil
	}
	rels, err := hostReleases(ctx, tx, host)
	if err != nil {
		return err
	}
	ids := make([]int64, 0, len(sc.networks))
	for id := range sc.networks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		macs := sortedKeys(sc.networks[id])
		n, err := tx.NetworkByID(ctx, id)
		if model.KindOf(err) == model.ErrNotFound {
			d.RemovedNetworks = append(d.RemovedNetworks, id)
			d.RemovedMetadata = append(d.RemovedMetadata, macs...)
			continue
		}
		if err != nil {
			return err
		}
		local, err := tx.HasLocalPort(ctx, id, host)
		if err != nil {
			return err
		}
		own, _, err := tx.HostOwnAddress(ctx, id, host)
		if err != nil {
			return err
		}
		hn, ok := hostNetworkHeader(host, n, local, own, len(rels[id]) > 0)
		if !ok {
			d.RemovedNetworks = append(d.RemovedNetworks, id)
			d.RemovedMetadata = append(d.RemovedMetadata, macs...)
			continue
		}
		nd := model.HostNetworkDelta{Network: n, BridgeAddress: hn.BridgeAddress, ServesDHCP: hn.ServesDHCP,
			NAT: hn.NAT, DHCPServer: hn.DHCPServer, ReleasesChanged: true, Releases: []model.DHCPRelease{}}
		if hn.ServesDHCP {
			nd.Releases = append(nd.Releases, rels[id]...)
			sortReleases(nd.Releases)
		}
		for _, mac := range macs {
			if err := m.deltaVIF(ctx, tx, host, hn, mac, &nd, d); err != nil {
				return err
			}
		}
		d.Networks = append(d.Networks, nd)
	}
	return nil
}

// deltaVIF adds the entries of the VIF with mac in network hn as they are
// now, or their removal.
func (m *Manager) deltaVIF(ctx context.Context, tx *store.Tx, host string, hn model.HostNetwork, mac string, nd *model.HostNetworkDelta, d *model.HostStateDelta) error {
	p, ok, err := tx.PortByMAC(ctx, mac)
	if err != nil {
		return err
	}
	ok = ok && p.NetworkID == hn.Network.ID
	if ok && p.Host == host {
		inst, err := hostInstance(ctx, tx, p)
		if err != nil {
			return err
		}
		nd.Instances = append(nd.Instances, inst)
	} else {
		nd.RemovedInstances = append(nd.RemovedInstances, mac)
	}
	if ok && servedBy(hn, host, p) {
		nd.DHCPHosts = append(nd.DHCPHosts, dhcpHostEntry(p))
	} else {
		nd.RemovedDHCPHosts = append(nd.RemovedDHCPHosts, mac)
	}
	if ok && hn.NAT && servedBy(hn, host, p) {
		md, err := m.portMetadata(ctx, tx, hn, p)
		if err != nil {
			return err
		}
		d.Metadata = append(d.Metadata, md)
	} else {
		d.RemovedMetadata = append(d.RemovedMetadata, mac)
	}
	return nil
}

// deltaGroups adds the touched groups: whole when a scope said so (rules
// changed, or the group may have entered the host's state), else their
// rules and the touched member addresses joined or left; a group the
// host no longer uses is removed.
func deltaGroups(ctx context.Context, tx *store.Tx, host string, sc parsedScopes, d *model.HostStateDelta) error {
	touched := map[int64]bool{}
	for g := range sc.groups {
		touched[g] = true
	}
	for g := range sc.members {
		touched[g] = true
	}
	for _, id := range sortedKeys(touched) {
		uses, err := tx.HostUsesGroup(ctx, id, host)
		if err != nil {
			return err
		}
		if !uses {
			d.RemovedSecurityGroups = append(d.RemovedSecurityGroups, id)
			continue
		}
		if sc.groups[id] {
			g, err := hostSecurityGroup(ctx, tx, id)
			if err != nil {
				return err
			}
			d.SecurityGroups = append(d.SecurityGroups, model.HostSecurityGroupDelta{SecurityGroup: g.SecurityGroup,
				MembersReplaced: true, AddedMembers: g.Members})
			continue
		}
		g, err := tx.SecurityGroup(ctx, id)
		if err != nil {
			return err
		}
		gd := model.HostSecurityGroupDelta{SecurityGroup: g}
		for _, a := range sortedAddrs(sc.members[id]) {
			member, err := tx.IsGroupMemberAddress(ctx, id, a)
			if err != nil {
				return err
			}
			if member {
				gd.AddedMembers = append(gd.AddedMembers, a)
			} else {
				gd.RemovedMembers = append(gd.RemovedMembers, a)
			}
		}
		d.SecurityGroups = append(d.SecurityGroups, gd)
	}
	return nil
}

func deltaFloatingIPs(ctx context.Context, tx *store.Tx, host string, sc parsedScopes, d *model.HostStateDelta) error {
	for _, a := range sortedAddrs(sc.floatings) {
		f, ok, err := tx.HostFloating(ctx, host, a)
		if err != nil {
			return err
		}
		if ok {
			d.FloatingIPs = append(d.FloatingIPs, hostFloatingEntry(f))
		} else {
			d.RemovedFloatingIPs = append(d.RemovedFloatingIPs, a)
		}
	}
	return nil
}

// ensureHost creates host's row on its agent's first watch, reading
// first: a long-poll must not take a write transaction each time.
func (m *Manager) ensureHost(ctx context.Context, host string) error {
	// Even for a poll whose deadline has passed: a host without a row is
	// left out of the bumps of changes to every host (allHosts).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var known bool
	if err := m.view(ctx, func(tx *store.Tx) error {
		var err error
		known, err = tx.HostKnown(ctx, host)
		return err
	}); err != nil || known {
		return err
	}
	return m.st.Update(ctx, func(tx *store.Tx) error { return tx.EnsureHost(ctx, host) })
}

// pruneHostChanges drops change log rows more than keepChangeRevisions
// behind their host.
func (m *Manager) pruneHostChanges(ctx context.Context) error {
	return m.st.Update(ctx, func(tx *store.Tx) error {
		_, err := tx.PruneHostChanges(ctx, keepChangeRevisions)
		return err
	})
}

func sortedKeys[K int64 | string](set map[K]bool) []K {
	out := make([]K, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sortedAddrs(set map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}
