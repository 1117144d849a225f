package manager

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"novanet/internal/model"
	"novanet/internal/store"
)

func randomMAC() string {
	var b [3]byte
	rand.Read(b[:])
	return fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", b[0], b[1], b[2])
}

// natHost is the host that NATs floating IPs of an instance on instHost.
func natHost(n model.Network, instHost string) string {
	if n.MultiHost {
		return instHost
	}
	return n.Host
}

// dhcpHost is the host whose dnsmasq serves an instance on instHost.
func dhcpHost(n model.Network, instHost string) string {
	if n.MultiHost {
		return instHost
	}
	return n.Host
}

// sourceGroupHosts are the hosts whose state lists the members of groups
// (their rules name the groups as sources).
func sourceGroupHosts(ctx context.Context, tx *store.Tx, groups []int64) ([]string, error) {
	return tx.SourceGroupHosts(ctx, groups)
}

// BootInstance allocates networking for an instance on a host.
func (m *Manager) BootInstance(ctx context.Context, scope model.Scope, req model.BootRequest) (model.InstanceDetail, error) {
	if err := req.Check(); err != nil {
		return model.InstanceDetail{}, err
	}
	project := req.ProjectID
	if scope.Admin {
		if project == "" {
			return model.InstanceDetail{}, model.Errorf(model.ErrInvalid, "project_id is required when an admin boots an instance")
		}
	} else {
		if project != "" && project != scope.ProjectID {
			return model.InstanceDetail{}, model.Errorf(model.ErrForbidden, "project %s may not boot instances for project %s", scope.ProjectID, project)
		}
		project = scope.ProjectID
	}
	if project == "" {
		return model.InstanceDetail{}, model.Errorf(model.ErrForbidden, "no project in the caller's scope")
	}
	id := req.UUID
	if id == "" {
		id = uuid.NewString()
	} else {
		u, err := uuid.Parse(id)
		if err != nil {
			return model.InstanceDetail{}, model.Errorf(model.ErrInvalid, "uuid %q is malformed: give a UUID or leave it empty", req.UUID)
		}
		id = u.String()
	}
	groupNames := req.SecurityGroups
	if len(groupNames) == 0 {
		groupNames = []string{"default"}
	}
	var detail model.InstanceDetail
	var noFloating bool
	err := m.update(ctx, func(tx *store.Tx, c *change) error {
		noFloating = false
		n, err := bootNetwork(ctx, tx, req.Network, project)
		if err != nil {
			return err
		}
		groups, err := m.bootGroups(ctx, tx, project, groupNames)
		if err != nil {
			return err
		}
		// Truncated to the store's unit so the answer equals a later read.
		inst := model.Instance{UUID: id, Hostname: req.Hostname, ProjectID: project, Host: req.Host,
			UserData: req.UserData, KeyName: req.KeyName, KeyData: req.KeyData, CreatedAt: nowUTC().Truncate(time.Microsecond),
			SecurityGroups: groups}
		if ok, err := tx.InsertInstanceNew(ctx, inst); err != nil {
			return err
		} else if !ok {
			return model.Errorf(model.ErrConflict, "instance %s exists: give another uuid", id)
		}
		if err := tx.AddInstanceGroups(ctx, id, groups); err != nil {
			return err
		}
		vif, err := m.bootVIF(ctx, tx, n, id, req.Host)
		if err != nil {
			return err
		}
		fixed, err := bootFixedIP(ctx, tx, n, req.FixedAddress, id, vif.ID)
		if err != nil {
			return err
		}
		if n.MultiHost {
			if err := hostGatewayAddress(ctx, tx, n, req.Host); err != nil {
				return err
			}
		}
		detail = model.InstanceDetail{Instance: inst, VIFs: []model.VIF{vif}, FixedIPs: []model.FixedIP{fixed}, FloatingIPs: []model.FloatingIP{}}
		if m.opts.AutoAssignFloatingIP {
			fl, err := tx.AllocateFloating(ctx, m.opts.DefaultFloatingPool, project, true)
			switch {
			case store.IsNoFreeAddress(err):
				noFloating = true
			case err != nil:
				return err
			default:
				if err := tx.AssociateFloating(ctx, fl.ID, fixed.ID, natHost(n, req.Host)); err != nil {
					return err
				}
				fl.FixedAddress, fl.InstanceUUID, fl.Host = fixed.Address, id, natHost(n, req.Host)
				c.touch(fl.Host, scopeFloating(fl.Address))
				detail.FloatingIPs = append(detail.FloatingIPs, fl.FloatingIP)
			}
		}
		// The host rows last: every boot bumps its network host's row, and
		// a row lock is held until commit, so taking it last keeps the
		// boots queued on it for one statement instead of the whole boot.
		ref, err := instanceRefOf(ctx, tx, inst)
		if err != nil {
			return err
		}
		hosts, err := c.instanceChanged(ctx, tx, ref, groups, n.Host)
		if err != nil {
			return err
		}
		return c.bump(ctx, tx, hosts...)
	})
	if err != nil {
		return model.InstanceDetail{}, err
	}
	if noFloating {
		// As nova: the boot succeeds without a floating IP; the operator
		// sees why in the log.
		m.log.Error("auto_assign_floating_ip: no free floating ip", "pool", m.opts.DefaultFloatingPool, "instance", id)
	}
	return detail, nil
}

// bootNetwork finds the network a boot names (or the first the project
// may use) and locks it shared: its delete waits for the boot, then sees
// the address in use.
func bootNetwork(ctx context.Context, tx *store.Tx, ref, project string) (model.Network, error) {
	if strings.TrimSpace(ref) != "" {
		n, err := tx.FindNetworkShared(ctx, ref)
		if err != nil {
			return n, err
		}
		if n.ProjectID != "" && n.ProjectID != project {
			// As reading it: another project's network does not exist
			// for this one (its name and owner stay private).
			return n, model.Errorf(model.ErrNotFound, "network %q not found: give its id, uuid or label (see 'novanet network list')", ref)
		}
		return n, nil
	}
	ns, err := tx.ListNetworks(ctx)
	if err != nil {
		return model.Network{}, err
	}
	for _, n := range ns {
		if n.ProjectID == "" || n.ProjectID == project {
			if err := tx.LockNetwork(ctx, n.ID, false); err != nil {
				return n, model.Errorf(model.ErrConflict, "network %q was deleted while the instance booted: boot into another network", n.Label)
			}
			return n, nil
		}
	}
	return model.Network{}, model.Errorf(model.ErrInvalid, "no network available to project %s: create one with 'novanet network create'", project)
}

// bootGroups resolves the group names of a boot to ids, each locked
// shared (a delete of the group waits, then sees the new member; one
// that went first leaves no row), creating the project's default group
// on first use.
func (m *Manager) bootGroups(ctx context.Context, tx *store.Tx, project string, names []string) ([]int64, error) {
	lookup := append([]string{"default"}, names...)
	ids, err := tx.GroupIDsShared(ctx, project, lookup)
	if err != nil {
		return nil, err
	}
	if _, ok := ids["default"]; !ok {
		if _, err := m.ensureDefaultGroup(ctx, tx, project); err != nil {
			return nil, err
		}
		if ids, err = tx.GroupIDsShared(ctx, project, lookup); err != nil {
			return nil, err
		}
	}
	groups := make([]int64, 0, len(names))
	for _, name := range names {
		id, ok := ids[name]
		if !ok {
			return nil, model.Errorf(model.ErrInvalid, "security group %q not found in project %s: create it first", name, project)
		}
		if !slices.Contains(groups, id) {
			groups = append(groups, id)
		}
	}
	slices.Sort(groups) // as the store lists them
	return groups, nil
}

// bootVIF creates the instance's VIF with a MAC no other VIF has.
func (m *Manager) bootVIF(ctx context.Context, tx *store.Tx, n model.Network, id, host string) (model.VIF, error) {
	for attempt := 0; attempt < m.opts.CreateUniqueMACAttempts; attempt++ {
		vu := uuid.NewString()
		vif := model.VIF{UUID: vu, MAC: randomMAC(), InstanceUUID: id, NetworkID: n.ID, Device: "tap" + vu[:11]}
		vif, ok, err := tx.InsertVIF(ctx, vif, dhcpHost(n, host))
		if err != nil || ok {
			return vif, err
		}
	}
	return model.VIF{}, model.Errorf(model.ErrExhausted, "no unique MAC address after %d attempts: retry, or raise create_unique_mac_address_attempts", m.opts.CreateUniqueMACAttempts)
}

// bootFixedIP gives the VIF the requested address, or the network's
// first free one.
func bootFixedIP(ctx context.Context, tx *store.Tx, n model.Network, want netip.Addr, id string, vifID int64) (model.FixedIP, error) {
	if !want.IsValid() {
		f, err := tx.ClaimFreeFixedIP(ctx, n.ID, id, vifID)
		if store.IsNoFreeAddress(err) {
			return f, model.Errorf(model.ErrExhausted, "network %q (%s) has no free addresses: delete unused instances, wait for released addresses, or create another network", n.Label, n.CIDR)
		}
		return f, err
	}
	f, err := tx.FixedIPByAddress(ctx, want)
	if err != nil {
		return f, model.Errorf(model.ErrInvalid, "fixed address %s is in no network", want)
	}
	if f.NetworkID != n.ID {
		return f, model.Errorf(model.ErrInvalid, "fixed address %s is not in network %q (%s)", want, n.Label, n.CIDR)
	}
	if f.Reserved {
		return f, model.Errorf(model.ErrInvalid, "fixed address %s is reserved in network %q: choose another", want, n.Label)
	}
	fixed, ok, err := tx.AllocateSpecificFixedIP(ctx, f.ID, id, vifID)
	if err != nil {
		return fixed, err
	}
	if !ok {
		return fixed, model.Errorf(model.ErrConflict, "fixed address %s is in use: choose another or let novanet pick", want)
	}
	return fixed, nil
}

// hostGatewayAddress gives a multi-host network's compute host its own
// address in the network (its gateway there) on its first instance.
func hostGatewayAddress(ctx context.Context, tx *store.Tx, n model.Network, host string) error {
	own, err := tx.FixedIPsByHost(ctx, host)
	if err != nil {
		return err
	}
	for _, f := range own {
		if f.NetworkID == n.ID {
			return nil
		}
	}
	if _, err := tx.AllocateHostFixedIP(ctx, n.ID, host); store.IsNoFreeAddress(err) {
		return model.Errorf(model.ErrExhausted, "network %q (%s) has no free address for host %s's gateway: free some addresses", n.Label, n.CIDR, host)
	} else if err != nil {
		return err
	}
	return nil
}

func instanceDetail(ctx context.Context, tx *store.Tx, id string) (model.InstanceDetail, error) {
	inst, err := tx.Instance(ctx, id)
	if err != nil {
		return model.InstanceDetail{}, err
	}
	d := model.InstanceDetail{Instance: inst, VIFs: []model.VIF{}, FixedIPs: []model.FixedIP{}, FloatingIPs: []model.FloatingIP{}}
	vifs, err := tx.VIFsByInstance(ctx, id)
	if err != nil {
		return d, err
	}
	d.VIFs = append(d.VIFs, vifs...)
	fs, err := tx.FixedIPsByInstance(ctx, id)
	if err != nil {
		return d, err
	}
	for _, f := range fs {
		if !f.Allocated {
			continue
		}
		d.FixedIPs = append(d.FixedIPs, f)
		fls, err := tx.Floatings(ctx, `fl.fixed_ip_id = ?`, f.ID)
		if err != nil {
			return d, err
		}
		for _, fl := range fls {
			d.FloatingIPs = append(d.FloatingIPs, fl.FloatingIP)
		}
	}
	return d, nil
}

// DeleteInstance releases an instance's networking.
func (m *Manager) DeleteInstance(ctx context.Context, scope model.Scope, id string) error {
	return m.update(ctx, func(tx *store.Tx, c *change) error {
		// Locked before reading what to release: an association of a
		// floating IP made meanwhile through another server either
		// committed (and is read below) or waits and then finds no
		// instance.
		inst, err := tx.LockInstance(ctx, id)
		if err != nil {
			return err
		}
		if !scope.Sees(inst.ProjectID) {
			return model.Errorf(model.ErrNotFound, "instance %s not found", id)
		}
		ref, err := instanceRefOf(ctx, tx, inst)
		if err != nil {
			return err
		}
		fixed, err := tx.FixedIPsByInstance(ctx, id)
		if err != nil {
			return err
		}
		nets := map[int64]model.Network{}
		hosts := []string{inst.Host}
		type floatOp struct {
			id   int64
			auto bool
		}
		var floats []floatOp
		for _, f := range fixed {
			n, ok := nets[f.NetworkID]
			if !ok {
				if n, err = tx.NetworkByID(ctx, f.NetworkID); err != nil {
					return err
				}
				nets[n.ID] = n
				hosts = append(hosts, n.Host)
			}
			fls, err := tx.Floatings(ctx, `fl.fixed_ip_id = ?`, f.ID)
			if err != nil {
				return err
			}
			for _, fl := range fls {
				hosts = append(hosts, fl.Host)
				c.touch(fl.Host, scopeFloating(fl.Address))
				floats = append(floats, floatOp{fl.ID, fl.AutoAssigned})
			}
		}
		others, err := tx.SourceGroupHosts(ctx, inst.SecurityGroups)
		if err != nil {
			return err
		}
		hosts = append(hosts, others...)
		for _, fl := range floats {
			if fl.auto {
				err = tx.ReleaseFloating(ctx, fl.id)
			} else {
				err = tx.DisassociateFloating(ctx, fl.id)
			}
			if err != nil {
				return err
			}
		}
		for _, f := range fixed {
			if !f.Allocated {
				continue
			}
			if err := tx.DeallocateFixedIP(ctx, f.ID); err != nil {
				return err
			}
			if !m.opts.ForceDHCPRelease {
				continue // the periodic task disassociates after the timeout
			}
			if f.Leased && f.VIFID != 0 {
				n := nets[f.NetworkID]
				if n.Kind != model.KindFlat {
					vif, err := tx.VIFByID(ctx, f.VIFID)
					if err != nil {
						return err
					}
					if err := tx.InsertRelease(ctx, store.Release{Host: dhcpHost(n, inst.Host), NetworkID: n.ID, Address: f.Address, MAC: vif.MAC}); err != nil {
						return err
					}
				}
			}
			if err := tx.DisassociateFixedIP(ctx, f); err != nil {
				return err
			}
		}
		if err := tx.DeleteInstance(ctx, id); err != nil {
			return err
		}
		// Host rows last, as in BootInstance.
		if hosts, err = c.instanceChanged(ctx, tx, ref, inst.SecurityGroups, hosts...); err != nil {
			return err
		}
		return c.bump(ctx, tx, hosts...)
	})
}

// GetInstance returns an instance with its networking.
func (m *Manager) GetInstance(ctx context.Context, scope model.Scope, id string) (model.InstanceDetail, error) {
	var d model.InstanceDetail
	err := m.view(ctx, func(tx *store.Tx) error {
		var err error
		d, err = instanceDetail(ctx, tx, id)
		if err == nil && !scope.Sees(d.ProjectID) {
			return model.Errorf(model.ErrNotFound, "instance %s not found", id)
		}
		return err
	})
	return d, err
}

// ListInstances lists up to limit of the scope's instances (an admin sees
// all) after the instance marker ("" = from the start), in creation order.
func (m *Manager) ListInstances(ctx context.Context, scope model.Scope, marker string, limit int) ([]model.InstanceDetail, error) {
	out := []model.InstanceDetail{}
	err := m.view(ctx, func(tx *store.Tx) error {
		out = out[:0]
		project := scope.ProjectID
		if scope.Admin {
			project = ""
		} else if project == "" {
			return nil
		}
		var after *model.Instance
		if marker != "" {
			mi, err := tx.Instance(ctx, marker)
			if err != nil || !scope.Sees(mi.ProjectID) {
				return model.Errorf(model.ErrNotFound, "marker instance %q not found: give the uuid of the last instance of the previous page", marker)
			}
			after = &mi
		}
		insts, err := tx.ListInstancesPage(ctx, project, after, limit)
		if err != nil {
			return err
		}
		for _, i := range insts {
			d, err := instanceDetail(ctx, tx, i.UUID)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// AddInstanceSecurityGroup adds the instance to its project's group name.
func (m *Manager) AddInstanceSecurityGroup(ctx context.Context, scope model.Scope, id, group string) error {
	return m.changeMembership(ctx, scope, id, group, true)
}

// RemoveInstanceSecurityGroup removes the instance from the group name.
func (m *Manager) RemoveInstanceSecurityGroup(ctx context.Context, scope model.Scope, id, group string) error {
	return m.changeMembership(ctx, scope, id, group, false)
}

func (m *Manager) changeMembership(ctx context.Context, scope model.Scope, id, group string, add bool) error {
	return m.update(ctx, func(tx *store.Tx, c *change) error {
		inst, err := tx.LockInstance(ctx, id)
		if err != nil {
			return err
		}
		if !scope.Sees(inst.ProjectID) {
			return model.Errorf(model.ErrNotFound, "instance %s not found", id)
		}
		if _, err := m.ensureDefaultGroup(ctx, tx, inst.ProjectID); err != nil {
			return err
		}
		g, err := tx.SecurityGroupByName(ctx, inst.ProjectID, group)
		if err != nil {
			return err
		}
		if add {
			if err := tx.LockSecurityGroup(ctx, g.ID, false); err != nil {
				return err
			}
		}
		member := false
		for _, x := range inst.SecurityGroups {
			member = member || x == g.ID
		}
		if add && member {
			return model.Errorf(model.ErrConflict, "instance %s is already in security group %q", id, group)
		}
		if !add && !member {
			return model.Errorf(model.ErrNotFound, "instance %s is not in security group %q", id, group)
		}
		ref, err := instanceRefOf(ctx, tx, inst)
		if err != nil {
			return err
		}
		// Its metadata names its groups too.
		mdHosts, err := m.metadataHosts(ctx, tx, inst)
		if err != nil {
			return err
		}
		hosts, err := c.instanceChanged(ctx, tx, ref, []int64{g.ID}, mdHosts...)
		if err != nil {
			return err
		}
		if err := c.bump(ctx, tx, hosts...); err != nil {
			return err
		}
		if add {
			return tx.AddInstanceGroup(ctx, id, g.ID)
		}
		_, err = tx.RemoveInstanceGroup(ctx, id, g.ID)
		return err
	})
}
