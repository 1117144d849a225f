package lab

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestModuleOrderLoadsDependenciesFirst(t *testing.T) {
	dir := t.TempDir()
	dep := `kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
`
	if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := moduleOrder(dir, []string{"virtio_pci", "virtio_net"})
	if err != nil {
		t.Fatal(err)
	}
	names := moduleNames(got)
	if len(names) != 6 {
		t.Fatalf("order %v, want each of the 6 modules once", names)
	}
	before := func(a, b string) bool { return slices.Index(names, a) < slices.Index(names, b) }
	for _, p := range [][2]string{{"virtio", "virtio_pci"}, {"virtio_ring", "virtio_pci"}, {"failover", "net_failover"},
		{"net_failover", "virtio_net"}, {"virtio", "virtio_net"}} {
		if !before(p[0], p[1]) {
			t.Errorf("order %v loads %s before its dependency %s", names, p[1], p[0])
		}
	}

	// A module the kernel builds in needs no file; one it lacks is an error.
	if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/drivers/block/virtio_blk.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := moduleOrder(dir, []string{"virtio_blk"}); err != nil || len(got) != 0 {
		t.Errorf("built-in virtio_blk: %v, %v; want nothing to load", got, err)
	}
	if _, err := moduleOrder(dir, []string{"e1000"}); err == nil || !strings.Contains(err.Error(), "e1000") {
		t.Errorf("missing module: got %v, want an error naming it", err)
	}
}

// The archive must be one the kernel unpacks: GNU cpio reads it back with
// the console device node and the files intact.
func TestInitramfsIsANewcArchive(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("needs cpio to read the archive back")
	}
	var buf bytes.Buffer
	if err := writeInitramfs(&buf, []cpioEntry{{name: "init", mode: 0o100755, data: []byte("#!/bin/sh\necho odd-length\n")},
		{name: "bin/busybox", mode: 0o100755, data: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gz := filepath.Join(dir, "i.cpio.gz")
	if err := os.WriteFile(gz, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", "-c", "gzip -dc "+gz+" | cpio -itv --quiet").CombinedOutput()
	if err != nil {
		t.Fatalf("cpio: %v\n%s", err, out)
	}
	list := string(out)
	for _, want := range []string{"crw-------", "dev/console", "-rwxr-xr-x", " init", "bin/busybox", "drwxr-xr-x", "lib/modules"} {
		if !strings.Contains(list, want) {
			t.Errorf("archive listing lacks %q:\n%s", want, list)
		}
	}
	ex := filepath.Join(dir, "x")
	if err := os.Mkdir(ex, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "gzip -dc "+gz+" | cpio -id --quiet --no-absolute-filenames 'init' 'bin/*'")
	cmd.Dir = ex
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("extract: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(ex, "init")); string(b) != "#!/bin/sh\necho odd-length\n" {
		t.Errorf("init came back as %q", b)
	}
}
