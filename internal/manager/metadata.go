package manager

import (
	"context"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"

	"novanet/internal/model"
	"novanet/internal/store"
)

// MetadataByAddress returns the metadata of the instance whose allocated
// fixed address is addr, read from the store now: nothing is cached by
// address, so an address handed to a new instance answers for it at once.
func (m *Manager) MetadataByAddress(ctx context.Context, addr netip.Addr) (model.InstanceMetadata, error) {
	var md model.InstanceMetadata
	err := m.view(ctx, func(tx *store.Tx) error {
		p, err := tx.PortByAddress(ctx, addr)
		if err != nil {
			return err
		}
		md, err = m.instanceMetadata(ctx, tx, p)
		return err
	})
	return md, err
}

// MetadataSource is the metadata service's view of the store. It keeps
// the answers it built, by address, but trusts one only while the store's
// change counter (the sum of all host revisions, read on every request)
// is the one it was built under: every change that can alter an
// instance's metadata (boot, delete, group membership, floating
// association, password) bumps some host's revision in its own
// transaction, so after a delete the very next request rebuilds, and a
// recycled address answers for its new instance at once. What it saves
// is the half dozen queries of a build, not the check.
type MetadataSource struct {
	m *Manager

	mu      sync.Mutex // protects the following
	counter int64
	byAddr  map[netip.Addr]model.InstanceMetadata
}

// NewMetadataSource returns the metadata service's source over m.
func (m *Manager) NewMetadataSource() *MetadataSource {
	return &MetadataSource{m: m, byAddr: map[netip.Addr]model.InstanceMetadata{}}
}

// MetadataByAddress is Manager.MetadataByAddress, checked against the
// store's change counter before a kept answer is reused.
func (s *MetadataSource) MetadataByAddress(ctx context.Context, addr netip.Addr) (model.InstanceMetadata, error) {
	now, err := s.m.st.ChangeCounter(ctx)
	if err != nil {
		return model.InstanceMetadata{}, err
	}
	s.mu.Lock()
	if now != s.counter {
		clear(s.byAddr)
		s.counter = now
	}
	md, ok := s.byAddr[addr]
	s.mu.Unlock()
	if ok {
		return md, nil
	}
	var built int64
	err = s.m.view(ctx, func(tx *store.Tx) error {
		// The counter first: the data read after it is at least as new,
		// so an answer is never filed under a counter newer than itself.
		if built, err = tx.ChangeCounter(ctx); err != nil {
			return err
		}
		p, err := tx.PortByAddress(ctx, addr)
		if err != nil {
			return err
		}
		md, err = s.m.instanceMetadata(ctx, tx, p)
		return err
	})
	if err != nil {
		return md, err
	}
	s.mu.Lock()
	if built == s.counter && len(s.byAddr) < maxKeptMetadata {
		s.byAddr[addr] = md
	}
	s.mu.Unlock()
	return md, nil
}

// maxKeptMetadata bounds the kept answers (one per address asking).
const maxKeptMetadata = 65536

// MetadataByInstance is Manager.MetadataByInstance (proxied requests
// are rare; no reuse).
func (s *MetadataSource) MetadataByInstance(ctx context.Context, uuid string, addr netip.Addr) (model.InstanceMetadata, error) {
	return s.m.MetadataByInstance(ctx, uuid, addr)
}

// SetMetadataPassword is Manager.SetMetadataPassword.
func (s *MetadataSource) SetMetadataPassword(ctx context.Context, uuid, password string) error {
	return s.m.SetMetadataPassword(ctx, uuid, password)
}

// MetadataByInstance returns instance uuid's metadata for its interface
// holding addr, or its first interface.
func (m *Manager) MetadataByInstance(ctx context.Context, uuid string, addr netip.Addr) (model.InstanceMetadata, error) {
	var md model.InstanceMetadata
	err := m.view(ctx, func(tx *store.Tx) error {
		ps, err := tx.PortsOfInstance(ctx, uuid)
		if err != nil {
			return err
		}
		if len(ps) == 0 {
			return model.Errorf(model.ErrNotFound, "instance %s has no network interface", uuid)
		}
		p := ps[0]
		for _, q := range ps {
			if q.Address.Address == addr {
				p = q
			}
		}
		md, err = m.instanceMetadata(ctx, tx, p)
		return err
	})
	return md, err
}

// SetMetadataPassword stores the password an instance's guest posted,
// once (model.ErrConflict after), and bumps the instance's host so an
// agent answering its metadata learns it.
func (m *Manager) SetMetadataPassword(ctx context.Context, uuid, password string) error {
	// Text as every column: PostgreSQL refuses NUL and invalid UTF-8
	// (nova's passwords are base64 anyway).
	if err := model.CheckText("password", password, model.MaxPasswordBytes); err != nil {
		return err
	}
	return m.update(ctx, func(tx *store.Tx, c *change) error {
		inst, err := tx.Instance(ctx, uuid)
		if err != nil {
			return err
		}
		hosts, err := m.metadataHosts(ctx, tx, inst)
		if err != nil {
			return err
		}
		ref, err := instanceRefOf(ctx, tx, inst)
		if err != nil {
			return err
		}
		c.vifsChanged(ref, hosts...)
		if err := c.bump(ctx, tx, hosts...); err != nil {
			return err
		}
		return tx.SetInstancePassword(ctx, uuid, password)
	})
}

func (m *Manager) instanceMetadata(ctx context.Context, tx *store.Tx, p store.Port) (model.InstanceMetadata, error) {
	inst, err := tx.Instance(ctx, p.InstanceUUID)
	if err != nil {
		return model.InstanceMetadata{}, err
	}
	n, err := tx.NetworkByID(ctx, p.NetworkID)
	if err != nil {
		return model.InstanceMetadata{}, err
	}
	gw := n.Gateway
	if n.MultiHost {
		// The instance's gateway is its own host's address on the network.
		own, err := tx.FixedIPsByHost(ctx, inst.Host)
		if err != nil {
			return model.InstanceMetadata{}, err
		}
		gw = netip.Addr{}
		for _, f := range own {
			if f.NetworkID == n.ID {
				gw = f.Address
			}
		}
	}
	return m.buildMetadata(ctx, tx, inst, p, n, gw)
}

func (m *Manager) buildMetadata(ctx context.Context, tx *store.Tx, inst model.Instance, p store.Port, n model.Network, gw netip.Addr) (model.InstanceMetadata, error) {
	md := model.InstanceMetadata{
		UUID: inst.UUID, Hostname: inst.Hostname, ProjectID: inst.ProjectID, Host: inst.Host,
		AvailabilityZone: m.opts.DefaultAvailabilityZone, UserData: inst.UserData,
		KeyName: inst.KeyName, KeyData: inst.KeyData, SecurityGroups: []string{}, CreatedAt: inst.CreatedAt,
		DHCPDomain: m.opts.DHCPDomain, Address: p.Address.Address, MAC: p.MAC, Device: p.Device, VIFUUID: p.UUID,
		Network: n, Gateway: gw, DNS: []netip.Addr{},
	}
	if md.AvailabilityZone == "" {
		md.AvailabilityZone = "nova"
	}
	for _, d := range []netip.Addr{n.DNS1, n.DNS2} {
		if d.IsValid() {
			md.DNS = append(md.DNS, d)
		}
	}
	if len(md.DNS) == 0 && n.Kind != model.KindFlat && gw.IsValid() {
		md.DNS = append(md.DNS, gw) // dnsmasq on the gateway answers DNS
	}
	for _, g := range inst.SecurityGroups {
		sg, err := tx.SecurityGroup(ctx, g)
		if err != nil {
			return md, err
		}
		md.SecurityGroups = append(md.SecurityGroups, sg.Name)
	}
	sort.Strings(md.SecurityGroups)
	fls, err := tx.ListFloatings(ctx, store.FloatingFilter{FixedIPID: p.Address.ID})
	if err != nil {
		return md, err
	}
	if len(fls) > 0 {
		md.FloatingAddress = fls[0].Address
	}
	if md.Password, err = tx.InstancePassword(ctx, inst.UUID); err != nil {
		return md, err
	}
	return md, nil
}

// hostMetadata fills hs.Metadata: the instances whose metadata requests
// this host's DNAT sends to itself, those of the networks it is the
// gateway of: its local instances of multi-host networks, every instance
// of a single-host network it is the network host of.
func (m *Manager) hostMetadata(ctx context.Context, tx *store.Tx, hs *model.HostState) error {
	for _, hn := range hs.Networks {
		if !hn.NAT {
			continue
		}
		on := hs.Host
		if !hn.Network.MultiHost {
			on = ""
		}
		ports, err := tx.Ports(ctx, hn.Network.ID, on)
		if err != nil {
			return err
		}
		for _, p := range ports {
			md, err := m.portMetadata(ctx, tx, hn, p)
			if err != nil {
				return err
			}
			hs.Metadata = append(hs.Metadata, md)
		}
	}
	sort.Slice(hs.Metadata, func(i, j int) bool { return hs.Metadata[i].Address.Less(hs.Metadata[j].Address) })
	return nil
}

// portMetadata is port p's metadata entry in the state of hn's host.
func (m *Manager) portMetadata(ctx context.Context, tx *store.Tx, hn model.HostNetwork, p store.Port) (model.InstanceMetadata, error) {
	inst, err := tx.Instance(ctx, p.InstanceUUID)
	if err != nil {
		return model.InstanceMetadata{}, err
	}
	md, err := m.buildMetadata(ctx, tx, inst, p, hn.Network, hn.BridgeAddress)
	// The network is in hs.Networks already; at thousands of instances a
	// copy per instance would dominate the state.
	md.Network = model.Network{ID: hn.Network.ID}
	return md, err
}

// SetHostInstancePassword is SetMetadataPassword for an agent answering
// host's metadata: only instances on host may be named.
func (m *Manager) SetHostInstancePassword(ctx context.Context, host, uuid, password string) error {
	var inst model.Instance
	if err := m.view(ctx, func(tx *store.Tx) error {
		var err error
		inst, err = tx.Instance(ctx, uuid)
		return err
	}); err != nil {
		return err
	}
	var hosts []string
	if err := m.view(ctx, func(tx *store.Tx) error {
		var err error
		hosts, err = m.metadataHosts(ctx, tx, inst)
		return err
	}); err != nil {
		return err
	}
	if !slices.Contains(hosts, host) {
		return model.Errorf(model.ErrForbidden, "instance %s's metadata is answered by %s, not by %q", uuid, strings.Join(hosts, ", "), host)
	}
	return m.SetMetadataPassword(ctx, uuid, password)
}

// metadataHosts are the hosts whose agents answer inst's metadata: its
// own host (multi-host networks) and the network hosts of its single-host
// networks.
func (m *Manager) metadataHosts(ctx context.Context, tx *store.Tx, inst model.Instance) ([]string, error) {
	hosts := []string{inst.Host}
	ps, err := tx.PortsOfInstance(ctx, inst.UUID)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		n, err := tx.NetworkByID(ctx, p.NetworkID)
		if err != nil {
			return nil, err
		}
		if !n.MultiHost && n.Host != "" && !slices.Contains(hosts, n.Host) {
			hosts = append(hosts, n.Host)
		}
	}
	return hosts, nil
}
