package lab

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// GuestCacheDir holds the QEMU guests' kernel and initramfs, built once
// per kernel, busybox and init script and reused by every lab.
var GuestCacheDir = "/var/cache/novanet-lab"

// BusyboxPath is the statically linked busybox the guest's initramfs runs
// (Debian's busybox-static).
var BusyboxPath = "/bin/busybox"

// guestModules are the modules the guest loads, with their dependencies
// (the cloud kernel builds virtio as modules).
var guestModules = []string{"virtio_pci", "virtio_net"}

// GuestImage is a bootable guest: a Debian kernel and the initramfs built
// for it.
type GuestImage struct {
	Kernel, Initramfs string
}

// FindGuestKernel returns the newest Debian kernel under /boot (a cloud
// kernel when one is installed) and its modules directory.
func FindGuestKernel() (kernel, modules string, err error) {
	found, _ := filepath.Glob("/boot/vmlinuz-*")
	// The cloud flavour boots fastest (few drivers to probe).
	slices.SortFunc(found, func(a, b string) int {
		ca, cb := strings.HasSuffix(a, "-cloud-amd64"), strings.HasSuffix(b, "-cloud-amd64")
		if ca != cb {
			if ca {
				return -1
			}
			return 1
		}
		return strings.Compare(b, a)
	})
	for _, k := range found {
		ver := strings.TrimPrefix(filepath.Base(k), "vmlinuz-")
		mods := filepath.Join("/lib/modules", ver)
		if _, err := os.Stat(filepath.Join(mods, "modules.dep")); err == nil {
			return k, mods, nil
		}
	}
	return "", "", errors.New("no guest kernel: install a Debian kernel with its modules (apt-get install linux-image-cloud-amd64; scripts/install-deps.sh does)")
}

// BuildGuestImage returns the cached guest for the installed kernel and
// busybox, building the initramfs when none matches.
func BuildGuestImage() (GuestImage, error) {
	kernel, modDir, err := FindGuestKernel()
	if err != nil {
		return GuestImage{}, err
	}
	busybox, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return GuestImage{}, fmt.Errorf("guest busybox: %w (apt-get install busybox-static)", err)
	}
	if err := checkStatic(BusyboxPath); err != nil {
		return GuestImage{}, err
	}
	mods, err := moduleOrder(modDir, guestModules)
	if err != nil {
		return GuestImage{}, err
	}
	files := []cpioEntry{
		{name: "init", mode: 0o100755, data: []byte(fmt.Sprintf(guestInit, strings.Join(moduleNames(mods), " ")))},
		{name: "bin/dhcp-event", mode: 0o100755, data: []byte(guestDHCPEvent)},
		{name: "bin/busybox", mode: 0o100755, data: busybox},
	}
	for _, m := range mods {
		if !strings.HasSuffix(m, ".ko") {
			return GuestImage{}, fmt.Errorf("module %s is compressed; the guest's busybox insmod loads plain .ko files only", m)
		}
		b, err := os.ReadFile(filepath.Join(modDir, m))
		if err != nil {
			return GuestImage{}, err
		}
		files = append(files, cpioEntry{name: "lib/modules/" + filepath.Base(m), mode: 0o100644, data: b})
	}
	h := sha256.New()
	fmt.Fprintln(h, kernel)
	for _, f := range files {
		fmt.Fprintln(h, f.name, len(f.data))
		h.Write(f.data)
	}
	dir := filepath.Join(GuestCacheDir, "guest-"+hex.EncodeToString(h.Sum(nil))[:16])
	img := GuestImage{Kernel: kernel, Initramfs: filepath.Join(dir, "initramfs.cpio.gz")}
	if _, err := os.Stat(img.Initramfs); err == nil {
		return img, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return GuestImage{}, fmt.Errorf("guest cache: %w", err)
	}
	var buf bytes.Buffer
	if err := writeInitramfs(&buf, files); err != nil {
		return GuestImage{}, err
	}
	// Written whole then renamed: labs booting at once never read half.
	tmp, err := os.CreateTemp(dir, "initramfs-*.tmp")
	if err != nil {
		return GuestImage{}, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return GuestImage{}, err
	}
	if err := tmp.Close(); err != nil {
		return GuestImage{}, err
	}
	return img, os.Rename(tmp.Name(), img.Initramfs)
}

func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("guest busybox %s: %w (apt-get install busybox-static)", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked and cannot run in the guest's initramfs: apt-get install busybox-static", path)
		}
	}
	return nil
}

// moduleOrder resolves want through modules.dep into a load order,
// dependencies first; modules built into the kernel are skipped.
func moduleOrder(modDir string, want []string) ([]string, error) {
	f, err := os.Open(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	deps := map[string][]string{}
	byName := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		byName[moduleName(mod)] = mod
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	builtin, _ := os.ReadFile(filepath.Join(modDir, "modules.builtin"))
	var order []string
	var visit func(m string)
	visit = func(m string) {
		if slices.Contains(order, m) {
			return
		}
		for _, d := range deps[m] {
			visit(d)
		}
		order = append(order, m)
	}
	for _, w := range want {
		m, ok := byName[w]
		if !ok {
			if bytes.Contains(builtin, []byte("/"+w+".ko")) {
				continue
			}
			return nil, fmt.Errorf("kernel modules in %s have no %s: the guest needs it for its virtio NIC", modDir, w)
		}
		visit(m)
	}
	return order, nil
}

func moduleName(path string) string {
	b := filepath.Base(path)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return b
}

func moduleNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = moduleName(p)
	}
	return out
}

type cpioEntry struct {
	name  string
	mode  uint32 // with the file type bits
	data  []byte
	major uint32 // of a device node
	minor uint32
}

// writeInitramfs writes a gzipped newc cpio archive: the directories,
// /dev/console (the kernel opens it for init before devtmpfs is mounted)
// and files.
func writeInitramfs(w io.Writer, files []cpioEntry) error {
	zw := gzip.NewWriter(w)
	entries := []cpioEntry{}
	for _, d := range []string{"bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys", "etc", "tmp", "run", "lib", "lib/modules"} {
		entries = append(entries, cpioEntry{name: d, mode: 0o040755})
	}
	entries = append(entries, cpioEntry{name: "dev/console", mode: 0o020600, major: 5, minor: 1})
	entries = append(entries, files...)
	entries = append(entries, cpioEntry{name: "TRAILER!!!"})
	for i, e := range entries {
		nlink := 1
		if e.mode&0o170000 == 0o040000 {
			nlink = 2
		}
		hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			i+1, e.mode, 0, 0, nlink, 0, len(e.data), 0, 0, e.major, e.minor, len(e.name)+1, 0)
		if _, err := io.WriteString(zw, hdr+e.name+"\x00"); err != nil {
			return err
		}
		if _, err := zw.Write(make([]byte, pad4(len(hdr)+len(e.name)+1))); err != nil {
			return err
		}
		if _, err := zw.Write(e.data); err != nil {
			return err
		}
		if _, err := zw.Write(make([]byte, pad4(len(e.data)))); err != nil {
			return err
		}
	}
	return zw.Close()
}

func pad4(n int) int { return (4 - n%4) % 4 }

// guestInit is the guest's /init: load the virtio modules, bring eth0 up
// and keep a udhcpc running on it. Everything it and the DHCP event
// script print goes to the serial console, which the lab reads.
const guestInit = `#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
for m in %s; do insmod /lib/modules/$m.ko || echo "novanet-guest: insmod $m failed"; done
name=$(sed -n 's/.*novanet\.hostname=\([a-z0-9]*\).*/\1/p' /proc/cmdline)
hostname "${name:-guest}"
ip link set lo up
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
ip link set eth0 up
# The lab's command channel on the second serial port: a line "ID
# COMMAND" runs COMMAND, its output comes back followed by "novanet-done
# ID STATUS".
if [ -e /dev/ttyS1 ] && stty -F /dev/ttyS1 raw -echo 2>/dev/null; then
	(
		while IFS= read -r line; do
			id="${line%%%% *}"
			sh -c "${line#* }" < /dev/null 2>&1
			echo "novanet-done $id $?"
		done
	) < /dev/ttyS1 > /dev/ttyS1 &
fi
echo "novanet-guest: $name booted, eth0 $(cat /sys/class/net/eth0/address)"
while true; do
	udhcpc -f -i eth0 -s /bin/dhcp-event -t 60 -T 1 -A 1 -x hostname:"$name"
	sleep 1
done
`

// guestDHCPEvent configures eth0 from udhcpc's lease, prints the lease in
// the lab's lease record format and, on a new lease, pings the router.
const guestDHCPEvent = `#!/bin/sh
case "$1" in
deconfig)
	ip -4 addr flush dev "$interface"
	echo "novanet-lease: none - - deconfig $(date +%s) -"
	;;
bound|renew)
	if ! ip -4 -o addr show dev "$interface" | grep -q " $ip/$mask "; then
		ip -4 addr flush dev "$interface"
		ip addr add "$ip/$mask" dev "$interface"
	fi
	r="${router%% *}"
	d="${dns%% *}"
	[ -n "$r" ] && ip route replace default via "$r" dev "$interface"
	[ -n "$d" ] && echo "nameserver $d" > /etc/resolv.conf
	echo "novanet-lease: $ip ${r:--} ${d:--} $1 $(date +%s) ${serverid:--}"
	if [ "$1" = bound ] && [ -n "$r" ]; then
		(
			if ping -c 3 -W 2 "$r" > /tmp/ping.out 2>&1; then
				echo "novanet-ping: $r ok: $(grep 'packets transmitted' /tmp/ping.out)"
			else
				echo "novanet-ping: $r failed: $(grep 'packets transmitted' /tmp/ping.out)"
			fi
		) &
	fi
	;;
esac
exit 0
`
