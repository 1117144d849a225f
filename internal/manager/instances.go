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
	// Whose boot it is first: a request for another project is refused
	// as forbidden however else it is wrong.
	project, err := bootProject(scope, req.ProjectID)
	if err != nil {
		return model.InstanceDetail{}, err
	}
	if err := req.Check(); err != nil {
		return model.InstanceDetail{}, err
	}
	id, err := bootUUID(req.UUID)
	if err != nil {
		return model.InstanceDetail{}, err
	}
	b := boot{req: req, project: project, id: id, groupNames: req.SecurityGroups}
	if len(b.groupNames) == 0 {
		b.groupNames = []string{"default"}
	}
	var detail model.InstanceDetail
	var noFloating bool
	err = m.update(ctx, func(tx *store.Tx, c *change) error {
		var err error
		detail, noFloating, err = m.bootInTx(ctx, tx, c, b)
		return err
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

// boot is a checked boot request: whose, which uuid, which groups.
type boot struct {
	req        model.BootRequest
	project    string
	id         string
	groupNames []string
}

// bootProject is the project a boot is for: an admin names it, anyone
// else boots into their own.
func bootProject(scope model.Scope, project string) (string, error) {
	if scope.Admin {
		if project == "" {
			return "", model.Errorf(model.ErrInvalid, "project_id is required when an admin boots an instance")
		}
		return project, nil
	}
	if project != "" && project != scope.ProjectID {
		return "", model.Errorf(model.ErrForbidden, "project %q cannot boot in project %q: leave project_id empty to boot in your own", scope.ProjectID, project)
	}
	if scope.ProjectID == "" {
		return "", model.Errorf(model.ErrForbidden, "no project in the caller's scope")
	}
	return scope.ProjectID, nil
}

// bootUUID is the instance's uuid in canonical form, a new one when the
// request gives none.
func bootUUID(ref string) (string, error) {
	if ref == "" {
		return uuid.NewString(), nil
	}
	u, err := uuid.Parse(ref)
	if err != nil {
		return "", model.Errorf(model.ErrInvalid, "uuid %q is malformed: give a UUID or leave it empty", ref)
	}
	return u.String(), nil
}

// bootInTx records the instance with its groups, VIF, fixed address and
// (auto_assign_floating_ip) floating address. noFloating: the pool had
// none to give, which does not fail the boot.
func (m *Manager) bootInTx(ctx context.Context, tx *store.Tx, c *change, b boot) (detail model.InstanceDetail, noFloating bool, err error) {
	n, err := bootNetwork(ctx, tx, b.req.Network, b.project)
	if err != nil {
		return detail, false, err
	}
	groups, err := m.bootGroups(ctx, tx, b.project, b.groupNames)
	if err != nil {
		return detail, false, err
	}
	inst, err := insertInstance(ctx, tx, b, groups)
	if err != nil {
		return detail, false, err
	}
	vif, err := m.bootVIF(ctx, tx, n, b.id, b.req.Host)
	if err != nil {
		return detail, false, err
	}
	fixed, err := bootFixedIP(ctx, tx, n, b.req.FixedAddress, b.id, vif.ID)
	if err != nil {
		return detail, false, err
	}
	if n.MultiHost {
		if err := hostGatewayAddress(ctx, tx, n, b.req.Host); err != nil {
			return detail, false, err
		}
	}
	detail = model.InstanceDetail{Instance: inst, VIFs: []model.VIF{vif}, FixedIPs: []model.FixedIP{fixed}, FloatingIPs: []model.FloatingIP{}}
	if m.opts.AutoAssignFloatingIP {
		fl, ok, err := m.autoAssignFloating(ctx, tx, n, b, fixed)
		if err != nil {
			return detail, false, err
		}
		if ok {
			c.touch(fl.Host, scopeFloating(fl.Address))
			detail.FloatingIPs = append(detail.FloatingIPs, fl)
		}
		noFloating = !ok
	}
	// The host rows last: every boot bumps its network host's row, and
	// a row lock is held until commit, so taking it last keeps the
	// boots queued on it for one statement instead of the whole boot.
	ref, err := instanceRefOf(ctx, tx, inst)
	if err != nil {
		return detail, false, err
	}
	hosts, err := c.instanceChanged(ctx, tx, ref, groups, n.Host)
	if err != nil {
		return detail, false, err
	}
	return detail, noFloating, c.bump(ctx, tx, hosts...)
}

// insertInstance records the instance and its group memberships.
func insertInstance(ctx context.Context, tx *store.Tx, b boot, groups []int64) (model.Instance, error) {
	// Truncated to the store's unit so the answer equals a later read.
	inst := model.Instance{UUID: b.id, Hostname: b.req.Hostname, ProjectID: b.project, Host: b.req.Host,
		UserData: b.req.UserData, KeyName: b.req.KeyName, KeyData: b.req.KeyData, CreatedAt: nowUTC().Truncate(time.Microsecond),
		SecurityGroups: groups}
	if ok, err := tx.InsertInstanceNew(ctx, inst); err != nil {
		return inst, err
	} else if !ok {
		return inst, model.Errorf(model.ErrConflict, "instance %s exists: give another uuid", b.id)
	}
	return inst, tx.AddInstanceGroups(ctx, b.id, groups)
}

// autoAssignFloating gives the new instance a floating IP from the
// default pool; ok is false when the pool has none free.
func (m *Manager) autoAssignFloating(ctx context.Context, tx *store.Tx, n model.Network, b boot, fixed model.FixedIP) (model.FloatingIP, bool, error) {
	fl, err := tx.AllocateFloating(ctx, m.opts.DefaultFloatingPool, b.project, true)
	if store.IsNoFreeAddress(err) {
		return model.FloatingIP{}, false, nil
	}
	if err != nil {
		return model.FloatingIP{}, false, err
	}
	nat := natHost(n, b.req.Host)
	if err := tx.AssociateFloating(ctx, fl.ID, fixed.ID, nat); err != nil {
		return model.FloatingIP{}, false, err
	}
	fl.FixedAddress, fl.InstanceUUID, fl.Host = fixed.Address, b.id, nat
	return fl.FloatingIP, true, nil
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
		fls, err := tx.ListFloatings(ctx, store.FloatingFilter{FixedIPID: f.ID})
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
		held, err := heldBy(ctx, tx, inst, fixed)
		if err != nil {
			return err
		}
		for _, fl := range held.floats {
			c.touch(fl.Host, scopeFloating(fl.Address))
		}
		if err := releaseFloatings(ctx, tx, held.floats); err != nil {
			return err
		}
		if err := m.releaseFixedIPs(ctx, tx, inst, fixed, held.nets); err != nil {
			return err
		}
		if err := tx.DeleteInstance(ctx, id); err != nil {
			return err
		}
		// Host rows last, as in BootInstance.
		hosts, err := c.instanceChanged(ctx, tx, ref, inst.SecurityGroups, held.hosts...)
		if err != nil {
			return err
		}
		return c.bump(ctx, tx, hosts...)
	})
}

// held is what a deleted instance lets go of and whom that concerns.
type held struct {
	nets   map[int64]model.Network // its fixed addresses' networks
	hosts  []string                // hosts whose state changes
	floats []store.Floating        // floating IPs associated with it
}

// heldBy reads the networks and floating IPs of an instance's fixed
// addresses, and the hosts whose state the delete changes.
func heldBy(ctx context.Context, tx *store.Tx, inst model.Instance, fixed []model.FixedIP) (held, error) {
	h := held{nets: map[int64]model.Network{}, hosts: []string{inst.Host}}
	for _, f := range fixed {
		if _, ok := h.nets[f.NetworkID]; !ok {
			n, err := tx.NetworkByID(ctx, f.NetworkID)
			if err != nil {
				return h, err
			}
			h.nets[n.ID] = n
			h.hosts = append(h.hosts, n.Host)
		}
		fls, err := tx.ListFloatings(ctx, store.FloatingFilter{FixedIPID: f.ID})
		if err != nil {
			return h, err
		}
		for _, fl := range fls {
			h.hosts = append(h.hosts, fl.Host)
			h.floats = append(h.floats, fl)
		}
	}
	others, err := tx.SourceGroupHosts(ctx, inst.SecurityGroups)
	if err != nil {
		return h, err
	}
	h.hosts = append(h.hosts, others...)
	return h, nil
}

// releaseFloatings gives auto-assigned floating IPs back to their pool
// and disassociates the others (they stay with their project).
func releaseFloatings(ctx context.Context, tx *store.Tx, floats []store.Floating) error {
	for _, fl := range floats {
		var err error
		if fl.AutoAssigned {
			err = tx.ReleaseFloating(ctx, fl.ID)
		} else {
			err = tx.DisassociateFloating(ctx, fl.ID)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// releaseFixedIPs deallocates the instance's fixed addresses. With
// force_dhcp_release they are disassociated at once, and a leased one
// queues a DHCPRELEASE for the host whose dnsmasq holds its lease;
// otherwise the periodic task disassociates them after the timeout.
func (m *Manager) releaseFixedIPs(ctx context.Context, tx *store.Tx, inst model.Instance, fixed []model.FixedIP, nets map[int64]model.Network) error {
	for _, f := range fixed {
		if !f.Allocated {
			continue
		}
		if err := tx.DeallocateFixedIP(ctx, f.ID); err != nil {
			return err
		}
		if !m.opts.ForceDHCPRelease {
			continue
		}
		if n := nets[f.NetworkID]; f.Leased && f.VIFID != 0 && n.Kind != model.KindFlat {
			vif, err := tx.VIFByID(ctx, f.VIFID)
			if err != nil {
				return err
			}
			if err := tx.InsertRelease(ctx, store.Release{Host: dhcpHost(n, inst.Host), NetworkID: n.ID, Address: f.Address, MAC: vif.MAC}); err != nil {
				return err
			}
		}
		if err := tx.DisassociateFixedIP(ctx, f); err != nil {
			return err
		}
	}
	return nil
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
