package lab

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"novanet/internal/client"
)

// Status is what `novanet lab status` shows.
type Status struct {
	Name       string
	Up         bool
	Namespaces []NamespaceStatus
	Daemons    []DaemonStatus
	VMs        []VMStatus
	// APIError is set when serve did not answer (VMStatus.APILeased is
	// then unknown).
	APIError string
	// API is how to drive the lab's API (floating.go).
	API APIAccess
}

// NamespaceStatus is one namespace of the lab.
type NamespaceStatus struct {
	Name, Role string
	Exists     bool
}

// DaemonStatus is serve or an agent.
type DaemonStatus struct {
	Key     string
	PID     int
	Running bool
}

// VMStatus is a VM with its last lease as the guest saw it and the
// store's view of its address.
type VMStatus struct {
	VM
	Lease         Lease
	ClientRunning bool
	APIAllocated  bool
	APILeased     bool
	// FloatingIPs associated with the VM, from the API.
	FloatingIPs []string
}

// Status reports the lab's namespaces, daemons and VMs; the store's
// leased flag comes from the API when serve answers.
func (l *Lab) Status(ctx context.Context) (Status, error) {
	if l.loadErr != nil {
		return Status{Name: l.Name, Up: l.IsUp()}, l.loadErr
	}
	st := Status{Name: l.Name, Up: l.IsUp(), Namespaces: l.namespaceStatus()}
	if !st.Up {
		return st, nil
	}
	st.Daemons = append(l.daemonStatus(), l.dnsmasqStatus()...)
	c := l.Client()
	st.VMs, st.APIError = l.vmStatus(ctx, c)
	l.floatingStatus(ctx, c, &st)
	return st, nil
}

// namespaceStatus lists the host namespaces, then each namespace VM's.
func (l *Lab) namespaceStatus() []NamespaceStatus {
	var nss []NamespaceStatus
	roles := []string{"switch", "controller", "compute-1", "compute-2", "outside"}
	for i, ns := range l.allHostNS() {
		nss = append(nss, NamespaceStatus{Name: ns, Role: roles[i], Exists: nsExists(ns)})
	}
	for _, vm := range l.st.VMs {
		if vm.Client == QEMUClient {
			continue
		}
		ns := l.vmNS(vm.Name)
		nss = append(nss, NamespaceStatus{Name: ns, Role: "vm " + vm.Name, Exists: nsExists(ns)})
	}
	return nss
}

// daemonStatus lists serve and the agents the lab started, by key.
func (l *Lab) daemonStatus() []DaemonStatus {
	var ds []DaemonStatus
	for _, k := range slices.Sorted(maps.Keys(l.st.PIDs)) {
		pid := l.st.PIDs[k]
		ds = append(ds, DaemonStatus{Key: k, PID: pid, Running: alive(pid, l.daemonMark(k))})
	}
	return ds
}

// dnsmasqStatus lists the agents' dnsmasqs, one per bridge, from their
// pid files.
func (l *Lab) dnsmasqStatus() []DaemonStatus {
	var ds []DaemonStatus
	for _, h := range Hosts {
		files, _ := filepath.Glob(l.path(h, "networks", "nova-*.pid"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || pid <= 0 {
				continue
			}
			bridge := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "nova-"), ".pid")
			ds = append(ds, DaemonStatus{Key: "dnsmasq-" + bridge + "-" + h, PID: pid, Running: alive(pid, f)})
		}
	}
	return ds
}

// vmStatus lists the VMs with their leases and the store's view of their
// addresses; after the first API error it stops asking and returns it.
func (l *Lab) vmStatus(ctx context.Context, c *client.Client) (vms []VMStatus, apiError string) {
	for _, vm := range l.st.VMs {
		vs := VMStatus{VM: vm, ClientRunning: vm.ClientPID > 0 && alive(vm.ClientPID, l.clientMark(vm.Name))}
		vs.Lease, _ = l.LeaseOf(vm.Name)
		if apiError == "" {
			fi, err := c.GetFixedIP(ctx, Addr(vm.Address))
			if err != nil {
				apiError = err.Error()
			} else {
				vs.APIAllocated, vs.APILeased = fi.Allocated, fi.Leased
			}
		}
		vms = append(vms, vs)
	}
	return vms, apiError
}
