package cli

import (
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"

	"novanet/internal/client"
	"novanet/internal/lab"
	"novanet/internal/model"
)

// The views: each resource's table (header and rows) beside the value
// -o json prints, handed to the output layer (output.go). A list's JSON
// is the list itself, an object's the object.

func printNetworks(g *globals, nets []model.Network) error { return printNetworksAs(g, nets, nets) }

// printNetworksAs prints nets as a table, or v (a list or one network) as
// JSON.
func printNetworksAs(g *globals, v any, nets []model.Network) error {
	rows := make([][]string, 0, len(nets))
	for _, n := range nets {
		rows = append(rows, []string{strconv.FormatInt(n.ID, 10), n.Label, string(n.Kind), n.CIDR.String(),
			addrStr(n.Gateway), addrStr(n.DHCPStart), n.Bridge, strconv.FormatBool(n.MultiHost), orDash(n.Host), orDash(n.ProjectID), n.UUID})
	}
	return g.print(v, []string{"ID", "LABEL", "KIND", "CIDR", "GATEWAY", "DHCP_START", "BRIDGE", "MULTI_HOST", "HOST", "PROJECT", "UUID"}, rows)
}

func printFixedIP(g *globals, f client.FixedIPInfo) error {
	return g.print(f, []string{"ADDRESS", "CIDR", "HOSTNAME", "HOST", "RESERVED"},
		[][]string{{f.Address, f.CIDR, orDash(f.Hostname), orDash(f.Host), strconv.FormatBool(f.Reserved)}})
}

func printFixedRows(g *globals, rs []model.FixedIPRow) error {
	rows := make([][]string, 0, len(rs))
	for _, r := range rs {
		rows = append(rows, []string{r.Network, r.Address.String(), orDash(r.MAC), orDash(r.Hostname), orDash(r.Host),
			orDash(r.DHCPHost), strconv.FormatBool(r.Allocated), strconv.FormatBool(r.Leased), strconv.FormatBool(r.Reserved)})
	}
	return g.print(rs, []string{"NETWORK", "ADDRESS", "MAC", "HOSTNAME", "HOST", "DHCP_HOST", "ALLOCATED", "LEASED", "RESERVED"}, rows)
}

func printLeases(g *globals, rs []model.FixedIPRow) error {
	rows := make([][]string, 0, len(rs))
	for _, r := range rs {
		rows = append(rows, []string{orDash(r.DHCPHost), r.Network, r.Bridge, r.Address.String(), orDash(r.MAC), orDash(r.Hostname), orDash(r.InstanceUUID)})
	}
	return g.print(rs, []string{"DHCP_HOST", "NETWORK", "BRIDGE", "ADDRESS", "MAC", "HOSTNAME", "INSTANCE"}, rows)
}

func printFloating(g *globals, ips []model.FloatingIP) error { return printFloatingAs(g, ips, ips) }

func printFloatingAs(g *globals, v any, ips []model.FloatingIP) error {
	rows := make([][]string, 0, len(ips))
	for _, f := range ips {
		rows = append(rows, []string{strconv.FormatInt(f.ID, 10), f.Address.String(), f.Pool, orDash(f.ProjectID),
			addrStr(f.FixedAddress), orDash(f.InstanceUUID), orDash(f.Interface)})
	}
	return g.print(v, []string{"ID", "ADDRESS", "POOL", "PROJECT", "FIXED", "INSTANCE", "INTERFACE"}, rows)
}

func printPools(g *globals, names []string) error {
	rows := make([][]string, len(names))
	for i, n := range names {
		rows[i] = []string{n}
	}
	return g.print(names, []string{"POOL"}, rows)
}

func printGroups(g *globals, gs []model.SecurityGroup) error {
	rows := make([][]string, 0, len(gs))
	for _, sg := range gs {
		rows = append(rows, []string{strconv.FormatInt(sg.ID, 10), sg.Name, sg.ProjectID, strconv.Itoa(len(sg.Rules)), sg.Description})
	}
	return g.print(gs, []string{"ID", "NAME", "PROJECT", "RULES", "DESCRIPTION"}, rows)
}

func printGroup(g *globals, sg model.SecurityGroup) error {
	return g.print(sg, []string{"ID", "NAME", "PROJECT", "DESCRIPTION"},
		[][]string{{strconv.FormatInt(sg.ID, 10), sg.Name, sg.ProjectID, sg.Description}})
}

func printRules(g *globals, v any, rules []model.SecurityGroupRule) error {
	rows := make([][]string, 0, len(rules))
	for _, r := range rules {
		src := "0.0.0.0/0"
		if r.CIDR.IsValid() {
			src = r.CIDR.String()
		} else if r.SourceGroupID != 0 {
			src = "group " + strconv.FormatInt(r.SourceGroupID, 10)
		}
		rows = append(rows, []string{strconv.FormatInt(r.ID, 10), strconv.FormatInt(r.GroupID, 10), orDash(r.Protocol),
			strconv.Itoa(r.FromPort), strconv.Itoa(r.ToPort), src})
	}
	return g.print(v, []string{"RULE", "GROUP", "PROTOCOL", "FROM", "TO", "SOURCE"}, rows)
}

func printInstances(g *globals, v any, ds []model.InstanceDetail) error {
	rows := make([][]string, 0, len(ds))
	for _, d := range ds {
		var fixed, macs []string
		for _, f := range d.FixedIPs {
			fixed = append(fixed, f.Address.String())
		}
		for _, vif := range d.VIFs {
			macs = append(macs, vif.MAC)
		}
		rows = append(rows, []string{d.UUID, orDash(d.Hostname), d.ProjectID, d.Host,
			orDash(strings.Join(fixed, ",")), orDash(strings.Join(macs, ",")), orDash(floatingList(d))})
	}
	return g.print(v, []string{"UUID", "HOSTNAME", "PROJECT", "HOST", "FIXED", "MAC", "FLOATING"}, rows)
}

func floatingList(d model.InstanceDetail) string {
	var floats []string
	for _, f := range d.FloatingIPs {
		floats = append(floats, f.Address.String())
	}
	return strings.Join(floats, ",")
}

// vifView is one VIF of `instance show -o json`, with what a hypervisor
// needs to plug it.
type vifView struct {
	model.VIF
	Network string   `json:"network"`
	Bridge  string   `json:"bridge"`
	Fixed   []string `json:"fixed_addresses"`
}

// printInstanceVIFs shows one instance per VIF: the network, bridge, tap
// device and MAC a hypervisor needs to plug it (JSON: the instance with
// its VIFs, each with its bridge).
func printInstanceVIFs(g *globals, d model.InstanceDetail, nets []model.Network) error {
	byID := map[int64]model.Network{}
	for _, n := range nets {
		byID[n.ID] = n
	}
	out := struct {
		model.InstanceDetail
		VIFs []vifView `json:"vifs"`
	}{InstanceDetail: d, VIFs: []vifView{}}
	floats := floatingList(d)
	rows := [][]string{}
	for _, v := range d.VIFs {
		vv := vifView{VIF: v, Network: byID[v.NetworkID].Label, Bridge: byID[v.NetworkID].Bridge, Fixed: []string{}}
		for _, f := range d.FixedIPs {
			if f.VIFID == v.ID {
				vv.Fixed = append(vv.Fixed, f.Address.String())
			}
		}
		out.VIFs = append(out.VIFs, vv)
		rows = append(rows, []string{d.UUID, orDash(d.Hostname), d.Host, orDash(vv.Network), orDash(vv.Bridge), orDash(v.Device), v.MAC,
			orDash(strings.Join(vv.Fixed, ",")), orDash(floats)})
	}
	return g.print(out, []string{"UUID", "HOSTNAME", "HOST", "NETWORK", "BRIDGE", "TAP", "MAC", "FIXED", "FLOATING"}, rows)
}

func printHosts(g *globals, hs []model.HostReport) error {
	rows := make([][]string, 0, len(hs))
	for _, h := range hs {
		seen := "never"
		if !h.LastSeen.IsZero() {
			seen = h.LastSeen.UTC().Format(time.RFC3339)
		}
		applied := strconv.FormatInt(h.AppliedRevision, 10) + "/" + strconv.FormatInt(h.Revision, 10)
		rows = append(rows, []string{h.Host, orDash(strings.Join(h.Roles, ",")), applied, seen, orDash(h.Version), orDash(h.Problem), orDash(h.LastDrift)})
	}
	return g.print(hs, []string{"HOST", "ROLES", "APPLIED", "LAST_SEEN", "VERSION", "PROBLEM", "LAST_DRIFT"}, rows)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func addrStr(a netip.Addr) string {
	if !a.IsValid() {
		return "-"
	}
	return a.String()
}

// printLabStatus prints `lab status` through the output layer: -o json
// the status object with snake_case keys (lists as arrays, [] when
// empty); -o value and -c the VM table; -o table the namespaces, daemons
// and VMs as three tables and how to reach the lab's API.
func printLabStatus(g *globals, st lab.Status) error {
	f, err := g.format()
	if err != nil {
		return err
	}
	switch {
	case f == "json":
		return g.writeJSON(snakeJSON(reflect.ValueOf(st)))
	case f == "value" || len(g.columns) > 0:
		return printLabVMs(g, st.VMs)
	case !st.Up:
		return printLabDown(g.stdout, st)
	}
	return printLabTables(g, st)
}

// printLabVMs is the VM table with one word a header, for -o value and -c.
func printLabVMs(g *globals, vms []lab.VMStatus) error {
	rows := make([][]string, 0, len(vms))
	for _, vm := range vms {
		rows = append(rows, []string{vm.Name, vm.Host, vm.Address, vm.Lease.Address, vm.Lease.Router, vm.Lease.DNS,
			vm.Lease.Server, vm.Client, strconv.FormatBool(vm.ClientRunning), strconv.FormatBool(vm.APILeased), vm.MAC, vm.Device})
	}
	return g.print(nil, []string{"VM", "HOST", "ALLOCATED", "GUEST_ADDRESS", "ROUTER", "DNS", "DHCP_SERVER", "CLIENT", "CLIENT_RUNNING", "STORE_LEASED", "MAC", "TAP"}, rows)
}

func printLabDown(out io.Writer, st lab.Status) error {
	fmt.Fprintf(out, "lab %s is down\n", st.Name)
	for _, ns := range st.Namespaces {
		if ns.Exists {
			fmt.Fprintf(out, "but namespace %s exists: run `novanet lab down --name %s`\n", ns.Name, st.Name)
		}
	}
	return nil
}

func printLabTables(g *globals, st lab.Status) error {
	var nsRows, daemonRows, vmRows [][]string
	for _, ns := range st.Namespaces {
		nsRows = append(nsRows, []string{ns.Name, ns.Role, strconv.FormatBool(ns.Exists)})
	}
	for _, d := range st.Daemons {
		daemonRows = append(daemonRows, []string{d.Key, strconv.Itoa(d.PID), strconv.FormatBool(d.Running)})
	}
	for _, vm := range st.VMs {
		client := vm.Client
		if !vm.ClientRunning {
			client += " (dead)"
		}
		leased := strconv.FormatBool(vm.APILeased)
		if st.APIError != "" {
			leased = "?"
		}
		vmRows = append(vmRows, []string{vm.Name, vm.Host, vm.Address, dash(vm.Lease.Address), dash(vm.Lease.Router), dash(vm.Lease.DNS),
			dash(vm.Lease.Server), client, leased, vm.MAC, vm.Device, dash(strings.Join(vm.FloatingIPs, ","))})
	}
	tables := []struct {
		header []string
		rows   [][]string
	}{
		{[]string{"NAMESPACE", "ROLE", "EXISTS"}, nsRows},
		{[]string{"DAEMON", "PID", "RUNNING"}, daemonRows},
		{[]string{"VM", "HOST", "ALLOCATED", "GUEST ADDRESS", "ROUTER", "DNS", "DHCP SERVER", "CLIENT", "STORE LEASED", "MAC", "TAP", "FLOATING"}, vmRows},
	}
	for i, t := range tables {
		if i > 0 {
			fmt.Fprintln(g.stdout)
		}
		if err := g.writeRows("table", t.header, t.rows); err != nil {
			return err
		}
	}
	if st.APIError != "" {
		fmt.Fprintf(g.stdout, "\nthe API did not answer (store view unknown): %s\n", st.APIError)
	}
	printLabAPI(g.stdout, st.Name, st.API)
	return nil
}

// printLabAPI says how to drive the lab's API: the endpoint answers inside
// the lab's namespaces.
func printLabAPI(out io.Writer, name string, a lab.APIAccess) {
	fmt.Fprintf(out, "\nAPI %s (inside the lab: novanet lab exec --name %s controller -- novanet --os-url %s --os-token TOKEN ...)\n", a.URL, name, a.URL)
	fmt.Fprintf(out, "  admin token:   %s\n", a.AdminToken)
	fmt.Fprintf(out, "  project token: %s (project %s, the VMs' project)\n", a.ProjectToken, a.ProjectID)
	fmt.Fprintf(out, "  floating pool: %s (%s), reachable from the outside host\n", a.FloatingPool, a.FloatingCIDR)
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
