package packaging

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"novanet/internal/nettest"
)

const testVersion = "0.0.0~pkgtest1"

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestDebianPackage builds the package with scripts/build-deb.sh, installs
// it on this machine with apt, runs the installed novanet and its
// novanet-dhcpbridge link, verifies the systemd units with
// systemd-analyze, and removes the package again.
func TestDebianPackage(t *testing.T) {
	nettest.RequireRoot(t, "dpkg", "apt-get", "systemd-analyze", "go", "git")
	if err := exec.Command("dpkg-query", "-W", "novanet").Run(); err == nil {
		t.Skip("a novanet package is installed on this machine already; not replacing it")
	}
	_, statErr := os.Stat("/usr/bin/novanet")
	if statErr == nil {
		t.Skip("/usr/bin/novanet exists outside a package; not overwriting it")
	}
	hadUser := exec.Command("getent", "passwd", "novanet").Run() == nil

	dir := t.TempDir()
	cmd := exec.Command("../scripts/build-deb.sh", dir)
	cmd.Env = append(os.Environ(), "NOVANET_VERSION="+testVersion)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("build-deb.sh: %v\n%s", err, stderr)
	}
	deb := strings.TrimSpace(string(out))
	if filepath.Dir(deb) != dir {
		t.Fatalf("build-deb.sh printed %q, not a file in %s", deb, dir)
	}
	info := run(t, "dpkg-deb", "--field", deb, "Version", "Depends")
	for _, want := range []string{testVersion, "dnsmasq-base", "iptables", "iproute2", "conntrack"} {
		if !strings.Contains(info, want) {
			t.Errorf("package control lacks %q:\n%s", want, info)
		}
	}

	t.Cleanup(func() {
		if out, err := exec.Command("dpkg", "--purge", "novanet").CombinedOutput(); err != nil {
			t.Errorf("dpkg --purge novanet: %v\n%s", err, out)
		}
		if !hadUser {
			_ = exec.Command("deluser", "--system", "novanet").Run()
			_ = exec.Command("delgroup", "--system", "novanet").Run()
		}
		_ = os.Remove("/var/lib/novanet") // only if the package left it empty
	})
	install := exec.Command("apt-get", "install", "-y", "-qq", "--no-install-recommends", deb)
	install.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("apt-get install %s: %v\n%s", deb, err, out)
	}

	var v struct {
		Version, Commit string
		BuildDate       string `json:"build_date"`
		GoVersion       string `json:"go_version"`
	}
	if err := json.Unmarshal([]byte(run(t, "/usr/bin/novanet", "version", "-o", "json")), &v); err != nil {
		t.Fatal(err)
	}
	head := strings.TrimSpace(run(t, "git", "rev-parse", "HEAD"))
	if v.Version != testVersion || !strings.HasPrefix(v.Commit, head) || v.BuildDate == "unknown" || !strings.HasPrefix(v.GoVersion, "go") {
		t.Errorf("installed novanet version = %+v; want %s at commit %s with a build date", v, testVersion, head)
	}
	if got := run(t, "/usr/bin/novanet", "--version"); !strings.HasPrefix(got, "novanet "+testVersion+"\n") {
		t.Errorf("novanet --version = %q", got)
	}
	// The link runs the dhcpbridge entry point (its usage), not the CLI.
	bridgeOut, _ := exec.Command("/usr/bin/novanet-dhcpbridge").CombinedOutput()
	if !strings.Contains(string(bridgeOut), "usage: novanet-dhcpbridge add|old|del") {
		t.Errorf("novanet-dhcpbridge printed %q", bridgeOut)
	}
	if _, err := os.Stat("/etc/novanet/novanet.conf"); err != nil {
		t.Errorf("example configuration not installed: %v", err)
	}
	if conf := run(t, "dpkg-query", "-W", "-f=${Conffiles}", "novanet"); !strings.Contains(conf, "/etc/novanet/novanet.conf") {
		t.Errorf("novanet.conf is not a conffile: %q", conf)
	}
	if owner := run(t, "stat", "-c", "%U", "/var/lib/novanet"); strings.TrimSpace(owner) != "novanet" {
		t.Errorf("/var/lib/novanet belongs to %q, want novanet (serve's user)", owner)
	}

	units := []string{"/lib/systemd/system/novanet-serve.service", "/lib/systemd/system/novanet-agent.service"}
	verify := exec.Command("systemd-analyze", append([]string{"verify"}, units...)...)
	vout, err := verify.CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, vout)
	}
	for _, line := range strings.Split(string(vout), "\n") {
		if strings.Contains(line, "novanet-") {
			t.Errorf("systemd-analyze verify complains: %s", line)
		}
	}
	agent := run(t, "systemd-analyze", "cat-config", "systemd/system/novanet-agent.service")
	for _, want := range []string{"KillMode=process", "Restart=always", "ExecStart=/usr/bin/novanet --config-file /etc/novanet/novanet.conf agent"} {
		if !strings.Contains(agent, want) {
			t.Errorf("installed agent unit lacks %s:\n%s", want, agent)
		}
	}
}
