package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The event scripts get the lease file's path baked in: dhclient runs its
// script with a scrubbed environment.
const udhcpcScript = `#!/bin/sh
# busybox udhcpc event script for a lab VM: configure eth0 and record the
# lease for novanet lab status.
LEASE_FILE='%s'
case "$1" in
deconfig) ip -4 addr flush dev "$interface"; rm -f "$LEASE_FILE" ;;
bound|renew)
	# A renewal of the same address keeps it, as a guest's dhclient-script
	# does: flushing would drop the default route and lose packets.
	if ! ip -4 -o addr show dev "$interface" | grep -q " $ip/$mask "; then
		ip -4 addr flush dev "$interface"
		ip addr add "$ip/$mask" dev "$interface"
	fi
	[ -n "$router" ] && ip route replace default via "${router%%%% *}" dev "$interface"
	echo "$ip ${router%%%% *} ${dns%%%% *} $1 $(date +%%s) $serverid" > "$LEASE_FILE.tmp" && mv "$LEASE_FILE.tmp" "$LEASE_FILE"
	;;
esac
exit 0
`

const dhclientScript = `#!/bin/sh
# dhclient script for a lab VM (instead of dhclient-script, which would
# rewrite the host's /etc/resolv.conf).
LEASE_FILE='%s'
case "$reason" in
BOUND|RENEW|REBIND|REBOOT)
	ip -4 addr flush dev "$interface"
	ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"
	r="${new_routers%%%% *}"
	[ -n "$r" ] && ip route replace default via "$r" dev "$interface"
	echo "$new_ip_address $r ${new_domain_name_servers%%%% *} $reason $(date +%%s) $new_dhcp_server_identifier" > "$LEASE_FILE.tmp" && mv "$LEASE_FILE.tmp" "$LEASE_FILE"
	;;
EXPIRE|FAIL|RELEASE|STOP) ip -4 addr flush dev "$interface"; rm -f "$LEASE_FILE" ;;
esac
exit 0
`

const dhclientConf = `initial-interval 1;
backoff-cutoff 2;
timeout 60;
retry 1;
send host-name "%s";
request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers, host-name, interface-mtu;
`

func (l *Lab) startDHCPClient(vm VM) (int, error) {
	dir := l.path("vms", vm.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	leaseFile := filepath.Join(dir, "lease")
	var args []string
	switch vm.Client {
	case "dhclient":
		script := filepath.Join(dir, "dhclient.sh")
		if err := os.WriteFile(script, fmt.Appendf(nil, dhclientScript, leaseFile), 0o755); err != nil {
			return 0, err
		}
		// Its own config: dhclient's default back-off waits 7-15 s after a
		// DISCOVER that dnsmasq ignored because the agent had not yet
		// written the host entry; udhcpc retries every second.
		conf := filepath.Join(dir, "dhclient.conf")
		if err := os.WriteFile(conf, fmt.Appendf(nil, dhclientConf, vm.Name), 0o644); err != nil {
			return 0, err
		}
		args = []string{"dhclient", "-d", "-4", "-cf", conf, "-sf", script, "-lf", filepath.Join(dir, "dhclient.leases"),
			"-pf", filepath.Join(dir, "dhclient.pid"), "eth0"}
	default:
		script := filepath.Join(dir, "udhcpc.sh")
		if err := os.WriteFile(script, fmt.Appendf(nil, udhcpcScript, leaseFile), 0o755); err != nil {
			return 0, err
		}
		// -f: stay in the foreground (we keep its pid); it renews at T1.
		args = []string{"busybox", "udhcpc", "-f", "-i", "eth0", "-s", script, "-t", "20", "-T", "1", "-A", "1", "-x", "hostname:" + vm.Name}
	}
	logf, err := os.OpenFile(filepath.Join(dir, "dhcp-client.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	c := exec.Command("ip", append([]string{"netns", "exec", l.vmNS(vm.Name)}, args...)...)
	c.Stdout, c.Stderr = logf, logf
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		return 0, fmt.Errorf("start %s in %s: %w", vm.Client, vm.Name, err)
	}
	go func() { _ = c.Wait() }()
	return c.Process.Pid, nil
}

// Lease is what a VM's DHCP client last got. Server is the DHCP server
// identifier: the bridge address of the dnsmasq that answered.
type Lease struct {
	Address, Router, DNS, Event, Server string
	At                                  time.Time
}

// LeaseOf reads the VM's last lease ("" Address when it has none).
func (l *Lab) LeaseOf(name string) (Lease, error) {
	if lease, ok, err := l.consoleLease(name); ok {
		return lease, err
	}
	b, err := os.ReadFile(l.path("vms", name, "lease"))
	if err != nil {
		return Lease{}, err
	}
	return parseLease(b)
}

func parseLease(b []byte) (Lease, error) {
	f := strings.Fields(string(b))
	if len(f) < 5 {
		return Lease{}, fmt.Errorf("short lease record %q", b)
	}
	sec, _ := strconv.ParseInt(f[4], 10, 64)
	lease := Lease{Address: f[0], Router: f[1], DNS: f[2], Event: f[3], At: time.Unix(sec, 0)}
	if len(f) > 5 {
		lease.Server = f[5]
	}
	return lease, nil
}

// WaitLease waits for the VM to hold a lease.
func (l *Lab) WaitLease(ctx context.Context, name string, d time.Duration) (Lease, error) {
	var lease Lease
	err := waitUntil(ctx, d, func() bool {
		var err error
		lease, err = l.LeaseOf(name)
		return err == nil && lease.Address != ""
	})
	if err != nil {
		log := l.path("vms", name, "dhcp-client.log")
		if _, err := os.Stat(l.path("vms", name, "console.log")); err == nil {
			log = l.path("vms", name, "console.log") // a QEMU guest's
		}
		return Lease{}, fmt.Errorf("VM %s got no DHCP lease within %s: see %s", name, d.Round(time.Second), log)
	}
	return lease, nil
}

// Renew asks a VM's DHCP client to renew its lease now (udhcpc: SIGUSR1).
func (l *Lab) Renew(name string) error {
	for _, vm := range l.st.VMs {
		if vm.Name != name {
			continue
		}
		if vm.Client != "udhcpc" {
			return fmt.Errorf("renew is supported for udhcpc VMs only")
		}
		if !alive(vm.ClientPID, l.clientMark(vm.Name)) {
			return fmt.Errorf("the DHCP client of %s (pid %d) is not running: see %s", name, vm.ClientPID, l.path("vms", name, "dhcp-client.log"))
		}
		// ip netns exec execs busybox in place, so the pid is udhcpc's.
		return syscall.Kill(vm.ClientPID, syscall.SIGUSR1)
	}
	return fmt.Errorf("no VM %s", name)
}

// checkClient refuses a DHCP client the lab cannot run.
func checkClient(c string) error {
	switch c {
	case "udhcpc":
		if _, err := exec.LookPath("busybox"); err != nil {
			return errors.New("udhcpc needs busybox: run scripts/install-deps.sh")
		}
	case "dhclient":
		if _, err := exec.LookPath("dhclient"); err != nil {
			return errors.New("dhclient needs isc-dhcp-client: run scripts/install-deps.sh")
		}
	default:
		return fmt.Errorf("unknown DHCP client %q: use udhcpc or dhclient", c)
	}
	return nil
}
