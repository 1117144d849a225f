package lab

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"novanet/internal/client"
	"novanet/internal/model"
)

// Boot allocates an instance on host through the API and plugs a VM
// namespace into it, then runs the DHCP client and waits for its lease.
func (l *Lab) Boot(ctx context.Context, name, host string) (VM, error) {
	vms, err := l.BootMany(ctx, []VMSpec{{Name: name, Host: host}}, 20*time.Second)
	if len(vms) == 0 {
		return VM{}, err
	}
	return vms[0], err
}

// VMSpec names a VM to boot, its host and optionally its DHCP client
// (udhcpc or dhclient; the lab's default when empty) and what the
// metadata service hands it: user data and an SSH public key.
type VMSpec struct {
	Name, Host, Client         string
	UserData, KeyName, KeyData string
	// QEMU boots a real guest under QEMU instead of a namespace (qemu.go).
	QEMU bool
}

// BootMany boots VMs at once (API boots in parallel, plugs, DHCP clients)
// and waits up to wait for all their leases.
func (l *Lab) BootMany(ctx context.Context, specs []VMSpec, wait time.Duration) ([]VM, error) {
	if !l.IsUp() { // before the lock, which needs root
		return nil, fmt.Errorf("lab %s is not up: run `novanet lab up` first", l.Name)
	}
	unlock, err := l.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !l.IsUp() {
		return nil, fmt.Errorf("lab %s is not up: run `novanet lab up` first", l.Name)
	}
	if err := l.checkSpecs(specs); err != nil {
		return nil, err
	}
	img, err := l.qemuImageFor(specs)
	if err != nil {
		return nil, err
	}
	vms, errs := l.bootAll(ctx, specs, img)
	booted, err := l.record(vms)
	if err != nil {
		return booted, err
	}
	if err := errors.Join(errs...); err != nil {
		return booted, err
	}
	return booted, l.waitLeases(ctx, booted, wait)
}

// checkSpecs refuses the whole batch on any bad or duplicate VM.
func (l *Lab) checkSpecs(specs []VMSpec) error {
	seen := map[string]bool{}
	for _, vm := range l.st.VMs {
		seen[vm.Name] = true
	}
	for _, sp := range specs {
		if !validName.MatchString(sp.Name) {
			return fmt.Errorf("VM name %q: use 1-8 lower-case letters or digits, starting with a letter", sp.Name)
		}
		if sp.Host != "compute-1" && sp.Host != "compute-2" && sp.Host != "controller" {
			return fmt.Errorf("host %q: use compute-1, compute-2 or controller", sp.Host)
		}
		if sp.Client != "" {
			if err := checkClient(sp.Client); err != nil {
				return err
			}
		}
		if seen[sp.Name] {
			return fmt.Errorf("VM %s already exists in lab %s", sp.Name, l.Name)
		}
		seen[sp.Name] = true
	}
	return nil
}

// bootAll boots the specs through the API and starts their guests, 16 at
// a time. vms[i] has a UUID when the API booted specs[i], whether or not
// its guest then started (errs[i]).
func (l *Lab) bootAll(ctx context.Context, specs []VMSpec, img GuestImage) (vms []VM, errs []error) {
	vms = make([]VM, len(specs))
	errs = make([]error, len(specs))
	c := l.Client()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, sp := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			vms[i], errs[i] = l.bootOne(ctx, c, sp, img)
		}()
	}
	wg.Wait()
	return vms, errs
}

// bootOne boots one instance through the API and starts its guest: a
// QEMU guest, or a namespace plugged into its tap running a DHCP client.
func (l *Lab) bootOne(ctx context.Context, c *client.Client, sp VMSpec, img GuestImage) (VM, error) {
	d, err := c.BootInstance(ctx, model.BootRequest{Hostname: sp.Name, Host: sp.Host, ProjectID: "demo",
		UserData: sp.UserData, KeyName: sp.KeyName, KeyData: sp.KeyData})
	if err != nil {
		return VM{}, fmt.Errorf("boot %s: %w", sp.Name, err)
	}
	if len(d.VIFs) == 0 || len(d.FixedIPs) == 0 {
		return VM{}, fmt.Errorf("boot %s: the API returned no VIF or fixed IP", sp.Name)
	}
	vm := VM{Name: sp.Name, UUID: d.UUID, Host: sp.Host, MAC: d.VIFs[0].MAC, Device: d.VIFs[0].Device,
		Address: d.FixedIPs[0].Address.String(), Client: cmp.Or(sp.Client, l.st.Options.DHCPClient, "udhcpc")}
	if sp.QEMU {
		vm.Client = QEMUClient
		vm.ClientPID, err = l.startQEMU(vm, img)
		return vm, err
	}
	if err := l.plug(vm); err != nil {
		return vm, err
	}
	vm.ClientPID, err = l.startDHCPClient(vm)
	return vm, err
}

// record adds every VM the API booted to the state, so that Delete and
// Down find it even when its guest failed to start.
func (l *Lab) record(vms []VM) ([]VM, error) {
	var booted []VM
	for _, vm := range vms {
		if vm.UUID != "" {
			booted = append(booted, vm)
			l.st.VMs = append(l.st.VMs, vm)
			l.printf("lab %s: %s on %s: allocated %s, MAC %s, tap %s", l.Name, vm.Name, vm.Host, vm.Address, vm.MAC, vm.Device)
		}
	}
	return booted, l.save()
}

// waitLeases waits up to wait in all for every VM's lease.
func (l *Lab) waitLeases(ctx context.Context, booted []VM, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for _, vm := range booted {
		lease, err := l.WaitLease(ctx, vm.Name, time.Until(deadline))
		if err != nil {
			return err
		}
		if len(booted) <= 5 {
			l.printf("lab %s: %s leased %s, router %s, dns %s", l.Name, vm.Name, lease.Address, lease.Router, lease.DNS)
		}
	}
	if len(booted) > 5 {
		l.printf("lab %s: %d VMs leased", l.Name, len(booted))
	}
	return nil
}

// Delete deletes the instance through the API and unplugs the VM.
func (l *Lab) Delete(ctx context.Context, name string) error {
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
	i := slices.IndexFunc(l.st.VMs, func(v VM) bool { return v.Name == name })
	if i < 0 {
		return fmt.Errorf("no VM %s in lab %s", name, l.Name)
	}
	vm := l.st.VMs[i]
	if err := l.Client().DeleteInstance(ctx, vm.UUID); err != nil && model.KindOf(err) != model.ErrNotFound {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	l.unplug(vm)
	l.st.VMs = slices.Delete(l.st.VMs, i, i+1)
	l.printf("lab %s: deleted %s (%s)", l.Name, name, vm.Address)
	return l.save()
}

func (l *Lab) unplug(vm VM) {
	if vm.Client == QEMUClient {
		l.stopQEMU(vm)
		_ = os.RemoveAll(l.path("vms", vm.Name))
		return
	}
	if vm.ClientPID > 0 {
		killOurs(vm.ClientPID, l.clientMark(vm.Name))
	}
	ns := l.vmNS(vm.Name)
	// Deleting the VM's end takes the tap with it at once, as a
	// hypervisor's unplug does; the namespace itself is torn down by the
	// kernel asynchronously once its last process has exited.
	if n, err := openNS(ns); err == nil {
		_ = n.delLink("eth0")
		n.Close()
	}
	killNamespace(ns)
	_ = os.RemoveAll(l.path("vms", vm.Name))
}
