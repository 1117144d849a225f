package manager

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"novanet/internal/model"
	"novanet/internal/store"
)

// The change log says, per host and revision, which items of the host's
// state a transaction touched, so that the watch can answer "what changed
// since revision R" by re-reading only those (hostdelta.go). A scope
// names an item by what identifies it after its rows are gone (a VIF by
// its network and MAC, a member by its address); the delta then carries
// the item as it is now, or its removal. Scopes:
//
//	all                  anything: the agent gets the whole state
//	vif:<net>:<mac>      one VIF's instance, DHCP host and metadata entries
//	                     and its network's header and releases
//	releases:<net>       the network's header and pending releases
//	group:<id>           a group whole: rules and all members (also when it
//	                     may enter or leave the host's state)
//	member:<id>:<addr>   one member address of a group joined or left
//	floating:<addr>      one floating IP association
const scopeAll = "all"

func scopeVIF(network int64, mac string) string { return fmt.Sprintf("vif:%d:%s", network, mac) }
func scopeReleases(network int64) string        { return fmt.Sprintf("releases:%d", network) }
func scopeGroup(id int64) string                { return fmt.Sprintf("group:%d", id) }
func scopeMember(id int64, a netip.Addr) string { return fmt.Sprintf("member:%d:%s", id, a) }
func scopeFloating(a netip.Addr) string         { return "floating:" + a.String() }

// touch records scopes for host (bump it too, in the same transaction).
func (c *change) touch(host string, scopes ...string) {
	if host == "" {
		return
	}
	if c.scopes == nil {
		c.scopes = map[string]map[string]bool{}
	}
	set := c.scopes[host]
	if set == nil {
		set = map[string]bool{}
		c.scopes[host] = set
	}
	for _, s := range scopes {
		set[s] = true
	}
}

// record writes the change log rows of every host bumped: its scopes
// under each revision it got, scopeAll when none was said.
func (c *change) record(ctx context.Context, tx *store.Tx) error {
	var rows []store.HostChange
	for h, revs := range c.revs {
		scopes := []string{scopeAll}
		if set := c.scopes[h]; len(set) > 0 && !set[scopeAll] {
			scopes = scopes[:0]
			for s := range set {
				scopes = append(scopes, s)
			}
		}
		for _, r := range revs {
			for _, s := range scopes {
				rows = append(rows, store.HostChange{Host: h, Revision: r, Scope: s})
			}
		}
	}
	return tx.InsertHostChanges(ctx, rows)
}

// instanceRef is what describes an instance's entries in host states
// after its rows are gone: read it before a delete.
type instanceRef struct {
	uuid, host string
	groups     []int64
	ports      []store.Port
}

func instanceRefOf(ctx context.Context, tx *store.Tx, inst model.Instance) (instanceRef, error) {
	ps, err := tx.PortsOfInstance(ctx, inst.UUID)
	return instanceRef{uuid: inst.UUID, host: inst.Host, groups: inst.SecurityGroups, ports: ps}, err
}

// instanceChanged records that ref's VIFs changed (booted, deleted, or
// their groups changed) on hosts, and that ref's addresses joined or left
// groups: every host listing one of those groups gets the member scopes
// (and is returned with hosts, for bump). On ref's own host a group may
// enter or leave the state (no other local member), and with it the
// groups its rules name as sources: those travel whole.
func (c *change) instanceChanged(ctx context.Context, tx *store.Tx, ref instanceRef, groups []int64, hosts ...string) ([]string, error) {
	all := append(slices.Clone(hosts), ref.host)
	var members []string
	for _, g := range groups {
		listing, err := groupHosts(ctx, tx, g)
		if err != nil {
			return nil, err
		}
		all = append(all, listing...)
		for _, p := range ref.ports {
			members = append(members, scopeMember(g, p.Address.Address))
		}
	}
	var vifs []string
	for _, p := range ref.ports {
		vifs = append(vifs, scopeVIF(p.NetworkID, p.MAC))
	}
	slices.Sort(all)
	all = slices.Compact(all)
	for _, h := range all {
		c.touch(h, vifs...)
		c.touch(h, members...)
	}
	for _, g := range groups {
		other, err := tx.OtherLocalGroupMember(ctx, g, ref.host, ref.uuid)
		if err != nil {
			return nil, err
		}
		if other {
			continue
		}
		c.touch(ref.host, scopeGroup(g))
		rules, err := tx.Rules(ctx, g)
		if err != nil {
			return nil, err
		}
		for _, r := range rules {
			if r.SourceGroupID != 0 {
				c.touch(ref.host, scopeGroup(r.SourceGroupID))
			}
		}
	}
	return all, nil
}

// vifsChanged records that the entries of ref's VIFs changed on hosts.
func (c *change) vifsChanged(ref instanceRef, hosts ...string) {
	for _, h := range hosts {
		for _, p := range ref.ports {
			c.touch(h, scopeVIF(p.NetworkID, p.MAC))
		}
	}
}

// groupRulesChanged records that group g's rules changed (source, when
// not 0, is the source group of the rule added or removed: it may enter
// or leave the states of g's members' hosts). It returns the hosts to
// bump: those listing g.
func (c *change) groupRulesChanged(ctx context.Context, tx *store.Tx, g, source int64) ([]string, error) {
	hosts, err := groupHosts(ctx, tx, g)
	if err != nil {
		return nil, err
	}
	for _, h := range hosts {
		c.touch(h, scopeGroup(g))
		if source != 0 {
			c.touch(h, scopeGroup(source))
		}
	}
	return hosts, nil
}

// floatingChanged records that floating address a was associated with or
// disassociated from fixed on host (the metadata of fixed's VIF names
// its floating address too).
func (c *change) floatingChanged(ctx context.Context, tx *store.Tx, host string, a, fixed netip.Addr) error {
	c.touch(host, scopeFloating(a))
	if !fixed.IsValid() {
		return nil
	}
	p, err := tx.PortByAddress(ctx, fixed)
	if model.KindOf(err) == model.ErrNotFound {
		return nil // its instance is gone: its VIF scopes say so
	}
	if err != nil {
		return err
	}
	c.touch(host, scopeVIF(p.NetworkID, p.MAC))
	return nil
}

// parsedScopes are a range of the change log, read back.
type parsedScopes struct {
	all       bool
	networks  map[int64]map[string]bool // network -> touched MACs (none: header and releases)
	groups    map[int64]bool            // whole
	members   map[int64]map[netip.Addr]bool
	floatings map[netip.Addr]bool
}

func parseScopes(cs []store.HostChange) (parsedScopes, error) {
	p := parsedScopes{networks: map[int64]map[string]bool{}, groups: map[int64]bool{},
		members: map[int64]map[netip.Addr]bool{}, floatings: map[netip.Addr]bool{}}
	for _, c := range cs {
		kind, rest, _ := strings.Cut(c.Scope, ":")
		var err error
		switch kind {
		case scopeAll:
			p.all = true
		case "vif", "releases":
			idText, mac, _ := strings.Cut(rest, ":")
			var id int64
			if id, err = strconv.ParseInt(idText, 10, 64); err == nil {
				if p.networks[id] == nil {
					p.networks[id] = map[string]bool{}
				}
				if kind == "vif" {
					p.networks[id][mac] = true
				}
			}
		case "group":
			var id int64
			if id, err = strconv.ParseInt(rest, 10, 64); err == nil {
				p.groups[id] = true
			}
		case "member":
			idText, addrText, _ := strings.Cut(rest, ":")
			var id int64
			var a netip.Addr
			if id, err = strconv.ParseInt(idText, 10, 64); err == nil {
				if a, err = netip.ParseAddr(addrText); err == nil {
					if p.members[id] == nil {
						p.members[id] = map[netip.Addr]bool{}
					}
					p.members[id][a] = true
				}
			}
		case "floating":
			var a netip.Addr
			if a, err = netip.ParseAddr(rest); err == nil {
				p.floatings[a] = true
			}
		default:
			err = fmt.Errorf("unknown kind")
		}
		if err != nil {
			return p, fmt.Errorf("change log of host %s at revision %d has a malformed scope %q (%v): written by a newer server? upgrade this one", c.Host, c.Revision, c.Scope, err)
		}
	}
	return p, nil
}
