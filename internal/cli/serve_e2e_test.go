package cli

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud"
	"github.com/gophercloud/gophercloud/openstack/compute/v2/extensions/defsecrules"
	"github.com/gophercloud/gophercloud/openstack/compute/v2/extensions/floatingips"
	"github.com/gophercloud/gophercloud/openstack/compute/v2/extensions/networks"
	"github.com/gophercloud/gophercloud/openstack/compute/v2/extensions/secgroups"
	"github.com/gophercloud/gophercloud/openstack/compute/v2/extensions/tenantnetworks"

	"novanet/internal/client"
	"novanet/internal/config"
	"novanet/internal/model"
)

// TestServeBinaryEndToEnd runs the built `novanet serve` from a config
// file, as an operator would, and drives it with gophercloud (the
// OpenStack Go SDK, unmodified, no Keystone), the CLI and two agents'
// long polls; then stops it with SIGTERM while a poll is parked. It
// proves the config reaches the manager: force_dhcp_release frees an
// address at once, auto_assign_floating_ip takes one from
// default_floating_pool, and the SQLite file lands under state_path.
func TestServeBinaryEndToEnd(t *testing.T) {
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	const (
		agentA = "e2e-agent-a-token-0123456789"
		agentB = "e2e-agent-b-token-0123456789"
	)
	tokens := adminTok + " admin\n" + projTok + " project proj-a\n" + agentA + " agent host-a\n" + agentB + " agent host-b\n"
	if err := os.WriteFile(filepath.Join(dir, "tokens"), []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state", "deeper") // serve creates it
	conf := filepath.Join(dir, "novanet.conf")
	if err := os.WriteFile(conf, []byte(`[DEFAULT]
state_path = `+state+`
network_host = ctl
force_dhcp_release = true
auto_assign_floating_ip = true
default_floating_pool = public
[novanet]
listen = 127.0.0.1:0
tokens_file = `+filepath.Join(dir, "tokens")+`
`), 0o600); err != nil {
		t.Fatal(err)
	}
	addrFile := filepath.Join(dir, "addr")
	logPath := filepath.Join(dir, "serve.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--config-file", conf, "serve", "--address_file", addrFile)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // see startServe
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
	})
	var url string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && url == ""; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			url = "http://" + strings.TrimSpace(string(b))
		}
	}
	if url == "" {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("serve did not write its address:\n%s", log)
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Errorf("serve listens on %s, want loopback", url)
	}
	if _, err := os.Stat(filepath.Join(state, "novanet.db")); err != nil {
		t.Errorf("SQLite store not created under state_path: %v", err)
	}

	ctx := context.Background()
	admin := client.New(url, adminTok)
	proj := client.New(url, projTok)
	nets, err := admin.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "private", FixedRangeV4: "10.0.0.0/24", Bridge: "br100", MultiHost: new(true)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateFloatingRange(ctx, model.FloatingRangeRequest{IPRange: "203.0.113.0/29", Pool: "public"}); err != nil {
		t.Fatal(err)
	}

	// Watch: a boot on host-a wakes host-a's poll, not host-b's.
	wa, wb := client.New(url, agentA), client.New(url, agentB)
	revA, err := wa.WaitHost(ctx, "host-a", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	revB, err := wb.WaitHost(ctx, "host-b", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	type woke struct {
		rev int64
		at  time.Time
		err error
	}
	poll := func(c *client.Client, host string, after int64, timeout time.Duration) chan woke {
		ch := make(chan woke, 1)
		go func() {
			rev, err := c.WaitHost(ctx, host, after, timeout)
			ch <- woke{rev, time.Now(), err}
		}()
		return ch
	}
	chA := poll(wa, "host-a", revA, 5*time.Second)
	chB := poll(wb, "host-b", revB, 1500*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	vm, err := proj.BootInstance(ctx, model.BootRequest{Hostname: "vm1", Host: "host-a"})
	if err != nil {
		t.Fatal(err)
	}
	booted := time.Now()
	a := <-chA
	if a.err != nil || a.rev <= revA {
		t.Errorf("host-a's poll: rev %d (held %d), err %v", a.rev, revA, a.err)
	} else if lat := a.at.Sub(booted); lat > 100*time.Millisecond {
		t.Errorf("host-a woke %v after the boot answered, want < 100ms", lat)
	}
	if b := <-chB; b.err != nil || b.rev != revB {
		t.Errorf("host-b's poll: rev %d (held %d), err %v; want its timeout with the same revision", b.rev, revB, b.err)
	}

	// auto_assign_floating_ip with default_floating_pool = public.
	if len(vm.FloatingIPs) != 1 || !netip.MustParsePrefix("203.0.113.0/29").Contains(vm.FloatingIPs[0].Address) {
		t.Errorf("boot with auto_assign_floating_ip: floating IPs %+v, want one from pool public", vm.FloatingIPs)
	}

	// gophercloud, unmodified, against the running binary.
	sc := func(token string) *gophercloud.ServiceClient {
		return &gophercloud.ServiceClient{ProviderClient: &gophercloud.ProviderClient{TokenID: token}, Endpoint: url + "/v2.1/"}
	}
	gAdmin, gProj := sc(adminTok), sc(projTok)
	pages, err := networks.List(gAdmin).AllPages()
	if err != nil {
		t.Fatal(err)
	}
	if gn, err := networks.ExtractNetworks(pages); err != nil || len(gn) != 1 || gn[0].ID != nets[0].UUID || gn[0].CIDR != "10.0.0.0/24" || !gn[0].MultiHost {
		t.Errorf("networks.List = %+v, %v", gn, err)
	}
	pages, err = tenantnetworks.List(gProj).AllPages()
	if err != nil {
		t.Fatal(err)
	}
	if tn, err := tenantnetworks.ExtractNetworks(pages); err != nil || len(tn) != 1 || tn[0].Name != "private" {
		t.Errorf("tenantnetworks.List = %+v, %v", tn, err)
	}
	fip, err := floatingips.Create(gProj, floatingips.CreateOpts{Pool: "public"}).Extract()
	if err != nil || fip.Pool != "public" {
		t.Fatalf("floatingips.Create: %+v, %v", fip, err)
	}
	sg, err := secgroups.Create(gProj, secgroups.CreateOpts{Name: "web", Description: "web"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := secgroups.CreateRule(gProj, secgroups.CreateRuleOpts{ParentGroupID: sg.ID, FromPort: 443, ToPort: 443, IPProtocol: "tcp", CIDR: "0.0.0.0/0"}).Extract(); err != nil {
		t.Errorf("secgroups.CreateRule: %v", err)
	}
	if _, err := defsecrules.Create(gAdmin, defsecrules.CreateOpts{IPProtocol: "icmp", FromPort: -1, ToPort: -1, CIDR: "0.0.0.0/0"}).Extract(); err != nil {
		t.Errorf("defsecrules.Create: %v", err)
	}

	// The CLI against the binary, with the environment cli.go reads.
	t.Setenv("NOVANET_URL", url)
	t.Setenv("NOVANET_TOKEN", projTok)
	// No --pool: the server's default_floating_pool.
	if code, out, errs := runCLI(t, "floating-ip", "allocate"); code != 0 || !strings.Contains(out, "public") {
		t.Errorf("novanet floating-ip allocate: exit %d, stdout %q, stderr %q; want pool public", code, out, errs)
	}
	pages, err = floatingips.List(gProj).AllPages()
	if err != nil {
		t.Fatal(err)
	}
	if fl, err := floatingips.ExtractFloatingIPs(pages); err != nil || len(fl) != 3 {
		t.Errorf("floatingips.List = %+v, %v (want the auto-assigned one and two allocated)", fl, err)
	}
	if code, out, errs := runCLI(t, "floating-ip", "associate", fip.IP, vm.UUID); code != 0 || errs != "" {
		t.Errorf("novanet floating-ip associate: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if code, out, errs := runCLI(t, "instance", "show", vm.UUID); code != 0 || !strings.Contains(out, fip.IP) {
		t.Errorf("novanet instance show: exit %d, stdout %q, stderr %q; want %s", code, out, errs, fip.IP)
	}

	// force_dhcp_release: the delete frees the address at once rather
	// than after fixed_ip_disassociate_timeout.
	if err := proj.DeleteInstance(ctx, vm.UUID); err != nil {
		t.Fatal(err)
	}
	fx, err := admin.GetFixedIP(ctx, vm.FixedIPs[0].Address)
	if err != nil || fx.Allocated || fx.InstanceUUID != "" {
		t.Errorf("fixed IP %s after delete with force_dhcp_release: %+v, %v; want free", vm.FixedIPs[0].Address, fx, err)
	}

	// SIGHUP re-reads the tokens file: a new token works, a removed one
	// is refused. Serve also notices a changed modification time on its
	// own; keeping the old one proves the signal does it.
	const newTok = "e2e-new-project-token-0123456789"
	tokPath := filepath.Join(dir, "tokens")
	fi, err := os.Stat(tokPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokPath, []byte(adminTok+" admin\n"+newTok+" project proj-b\n"+agentA+" agent host-a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tokPath, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if _, err := client.New(url, newTok).ListFloatingIPs(ctx); err == nil {
		t.Fatal("the new token works before SIGHUP: the reload test below would prove nothing")
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var newErr, oldErr error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		_, newErr = client.New(url, newTok).ListFloatingIPs(ctx)
		_, oldErr = proj.ListFloatingIPs(ctx)
		if newErr == nil && oldErr != nil {
			break
		}
	}
	var he *client.HTTPError
	if newErr != nil || !errors.As(oldErr, &he) || he.Status != 401 {
		t.Errorf("after SIGHUP: new token err %v, removed token err %v (want nil and a 401)", newErr, oldErr)
	}

	// SIGTERM with a long poll parked: serve wakes the poll and exits 0.
	parked := poll(wa, "host-a", 1<<40, time.Minute)
	time.Sleep(200 * time.Millisecond)
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			log, _ := os.ReadFile(logPath)
			t.Errorf("serve exited with %v after SIGTERM:\n%s", err, log)
		}
		if d := time.Since(sent); d > 3*time.Second {
			t.Errorf("serve took %v to stop after SIGTERM", d)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve still running 15s after SIGTERM")
	}
	select {
	case <-parked:
	case <-time.After(5 * time.Second):
		t.Error("the parked long poll did not end when serve stopped")
	}
}

// TestManagerOptionsFromConfig: every option the manager takes comes from
// its nova name in the config, fixed_ip_disassociate_timeout in seconds.
func TestManagerOptionsFromConfig(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "nova.conf")
	if err := os.WriteFile(conf, []byte(`[DEFAULT]
network_host = netnode
dhcp_domain = example.org
dhcp_lease_time = 3600
force_dhcp_release = true
fixed_ip_disassociate_timeout = 42
allow_same_net_traffic = false
auto_assign_floating_ip = true
default_floating_pool = public
public_interface = eth9
quota_floating_ips = 3
create_unique_mac_address_attempts = 7
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.Sources{Files: []string{conf}})
	if err != nil {
		t.Fatal(err)
	}
	o := ManagerOptions(cfg)
	if o.NetworkHost != "netnode" || o.DHCPDomain != "example.org" || o.DHCPLeaseTime != 3600 ||
		!o.ForceDHCPRelease || o.FixedIPDisassociateTimeout != 42*time.Second || o.AllowSameNetTraffic ||
		!o.AutoAssignFloatingIP || o.DefaultFloatingPool != "public" || o.PublicInterface != "eth9" ||
		o.QuotaFloatingIPs != 3 || o.CreateUniqueMACAttempts != 7 {
		t.Errorf("options from config: %+v", o)
	}
	if o.PeriodicInterval <= 0 || o.PollInterval <= 0 {
		t.Errorf("intervals not defaulted: periodic %v, poll %v", o.PeriodicInterval, o.PollInterval)
	}
}
