package lab

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"novanet/internal/client"
	"novanet/internal/model"
)

// Floating addresses in the lab. The pool "nova" is FloatingRange, a
// documentation range the outside host routes to the controller's public
// address. Single-host: the controller NATs every floating address and
// holds it on its public interface eth0. Multi-host: the instance's
// compute NATs it and holds it on its public interface eth1 (the
// management network), and the controller, playing the site's upstream
// router, has the range on-link on eth1: it finds the compute that holds
// an address by ARP, and a compute that takes an address over announces
// it with gratuitous ARP (send_arp_for_ha), as an upstream router with
// the floating range on the public VLAN would.
const (
	FloatingRange = "198.51.100.0/24"
	FloatingPool  = "nova"
	// ProjectID is the project lab VMs boot in.
	ProjectID = "demo"
)

// APIAccess is what a user needs to drive the lab's API by hand.
type APIAccess struct {
	// URL is reachable from inside the lab's namespaces (the controller's
	// management address), e.g. with `novanet lab exec controller --
	// novanet --os-url URL --os-token TOKEN floating-ip list`.
	URL          string
	AdminToken   string
	ProjectID    string
	ProjectToken string
	FloatingPool string
	FloatingCIDR string
}

// floatingInterface is the public interface of the hosts that NAT
// floating addresses in this lab.
func floatingInterface(o Options) string {
	if o.MultiHost {
		return "eth1"
	}
	return "eth0"
}

func (l *Lab) setupFloating(ctx context.Context, o Options) error {
	iface := floatingInterface(o)
	if _, err := l.Client().CreateFloatingRange(ctx, model.FloatingRangeRequest{IPRange: FloatingRange, Pool: FloatingPool, Interface: iface}); err != nil {
		return fmt.Errorf("floating ip range %s: %w", FloatingRange, err)
	}
	if err := l.routeFloating(o); err != nil {
		return err
	}
	where := "the controller's eth0"
	if o.MultiHost {
		where = "the instance's compute, eth1 (the controller routes the range on-link there)"
	}
	l.printf("lab %s: floating pool %s = %s, held on %s; the outside host routes it via %s", l.Name, FloatingPool, FloatingRange, where, publicIP)
	return nil
}

// routeFloating routes the floating range from the outside host to the
// controller's eth0, and in a multi-host lab from the controller on-link
// to the computes, which hold the addresses on their eth1.
func (l *Lab) routeFloating(o Options) error {
	out, err := openNS(l.hostNS("outside"))
	if err != nil {
		return err
	}
	defer out.Close()
	if err := out.addRoute(FloatingRange, publicIP, ""); err != nil {
		return err
	}
	if !o.MultiHost {
		return nil
	}
	ctl, err := openNS(l.hostNS("controller"))
	if err != nil {
		return err
	}
	defer ctl.Close()
	return ctl.addRoute(FloatingRange, "", "eth1")
}

// ProjectClient is an API client acting in the VMs' project.
func (l *Lab) ProjectClient() *client.Client { return l.clientWithToken(l.st.ProjectToken) }

// AssociateFloating allocates a floating address to the VMs' project and
// associates it with the VM.
func (l *Lab) AssociateFloating(ctx context.Context, vm string) (netip.Addr, error) {
	v, ok := l.vm(vm)
	if !ok {
		return netip.Addr{}, fmt.Errorf("no VM %s in lab %s", vm, l.Name)
	}
	c := l.ProjectClient()
	f, err := c.AllocateFloatingIP(ctx, FloatingPool)
	if err != nil {
		return netip.Addr{}, err
	}
	if err := c.AssociateFloatingIP(ctx, f.Address, v.UUID, netip.Addr{}); err != nil {
		_ = c.ReleaseFloatingIP(ctx, f.Address.String())
		return netip.Addr{}, err
	}
	return f.Address, nil
}

func (l *Lab) vm(name string) (VM, bool) {
	i := slices.IndexFunc(l.st.VMs, func(v VM) bool { return v.Name == name })
	if i < 0 {
		return VM{}, false
	}
	return l.st.VMs[i], true
}

// floatingStatus fills in the API access and each VM's floating
// addresses.
func (l *Lab) floatingStatus(ctx context.Context, c *client.Client, st *Status) {
	st.API = APIAccess{URL: "http://" + apiAddr, AdminToken: l.st.AdminToken, ProjectID: ProjectID,
		ProjectToken: l.st.ProjectToken, FloatingPool: FloatingPool, FloatingCIDR: FloatingRange}
	if st.APIError != "" {
		return
	}
	fls, err := c.ListAllFloatingIPs(ctx)
	if err != nil {
		st.APIError = err.Error()
		return
	}
	for i := range st.VMs {
		st.VMs[i].FloatingIPs = []string{}
		for _, f := range fls {
			if f.InstanceUUID != "" && f.InstanceUUID == st.VMs[i].UUID {
				st.VMs[i].FloatingIPs = append(st.VMs[i].FloatingIPs, f.Address.String())
			}
		}
	}
}
