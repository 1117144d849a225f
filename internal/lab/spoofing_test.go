package lab_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"novanet/internal/lab"
	"novanet/internal/netnsdo"
)

// A VM forges frames of every kind the L2 guard must stop: a foreign
// source MAC, a foreign source IP, ARP claiming its neighbour's or the
// gateway's address, ARP whose sender MAC is not its own, 802.1Q and QinQ
// tagged frames, a DHCP server's reply, a router advertisement and a
// non-DHCP packet from 0.0.0.0. Packet sockets at the neighbour on the
// same host, a VM on the other host and the gateway's uplink count what
// arrives: none of it, while the VM's honest frames (and a DHCP discover
// from 0.0.0.0) arrive at all three. Neither ARP cache is poisoned and the
// VM's own traffic still works.
func TestL2GuardStopsSpoofedFrames(t *testing.T) { l2GuardStopsSpoofedFrames(t, fastOptions()) }

func l2GuardStopsSpoofedFrames(t *testing.T, o lab.Options) {
	l := up(t, o)
	vm1, vm2, vm3 := boot(t, l, "vm1", "compute-1"), boot(t, l, "vm2", "compute-1"), boot(t, l, "vm3", "compute-2")
	gw := netip.MustParseAddr("10.0.0.1")
	// Fill both caches honestly first: the attack would have to change them.
	for _, p := range [][2]string{{"vm2", gw.String()}, {"controller", vm2.Address}} {
		if err := ping(l, p[0], p[1]); err != nil {
			t.Fatalf("%s -> %s before the attack: %v", p[0], p[1], err)
		}
	}
	gwMAC := neighMAC(t, l, "vm2", gw.String())
	if gwMAC == "" {
		t.Fatal("vm2 has no ARP entry for the gateway after pinging it")
	}

	me := mustMAC(vm1.MAC)
	myIP, nbIP := netip.MustParseAddr(vm1.Address), netip.MustParseAddr(vm2.Address)
	forgedMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	all := netip.MustParseAddr("255.255.255.255")
	zero := netip.IPv4Unspecified()
	udpTo := func(src netip.Addr, sport, dport uint16, mark string) []byte {
		return ipv4(src, all, unix.IPPROTO_UDP, udp(sport, dport, []byte(mark)))
	}
	spoofs := []struct{ name, mark string }{
		{"forged source MAC", "NNSPOOF-mac"},
		{"forged source IP", "NNSPOOF-ip"},
		{"ARP reply claiming the neighbour's IP", "NNSPOOF-arp-neighbour"},
		{"ARP request claiming the gateway's IP", "NNSPOOF-arp-gateway"},
		{"ARP with a sender MAC not the VM's", "NNSPOOF-arp-sha"},
		{"802.1Q tagged frame", "NNSPOOF-vlan"},
		{"QinQ tagged frame", "NNSPOOF-qinq"},
		{"rogue DHCP server reply", "NNSPOOF-dhcp"},
		{"IPv6 router advertisement", "NNSPOOF-ra"},
		{"non-DHCP packet from 0.0.0.0", "NNSPOOF-zero"},
	}
	frames := [][]byte{
		ether(bcast, forgedMAC, unix.ETH_P_IP, udpTo(myIP, 9999, 9999, spoofs[0].mark)),
		ether(bcast, me, unix.ETH_P_IP, udpTo(netip.MustParseAddr("10.0.0.250"), 9999, 9999, spoofs[1].mark)),
		ether(bcast, me, unix.ETH_P_ARP, append(arp(2, me, nbIP, bcast, gw), spoofs[2].mark...)),
		ether(bcast, me, unix.ETH_P_ARP, append(arp(1, me, gw, net.HardwareAddr{0, 0, 0, 0, 0, 0}, nbIP), spoofs[3].mark...)),
		ether(bcast, me, unix.ETH_P_ARP, append(arp(1, forgedMAC, myIP, net.HardwareAddr{0, 0, 0, 0, 0, 0}, nbIP), spoofs[4].mark...)),
		ether(bcast, me, unix.ETH_P_8021Q, append([]byte{0, 100, 0x08, 0x00}, udpTo(myIP, 9999, 9999, spoofs[5].mark)...)),
		ether(bcast, me, unix.ETH_P_8021AD, append([]byte{0, 200, 0x81, 0x00, 0, 100, 0x08, 0x00}, udpTo(myIP, 9999, 9999, spoofs[6].mark)...)),
		ether(bcast, me, unix.ETH_P_IP, udpTo(myIP, 67, 68, spoofs[7].mark)),
		ether(net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}, me, unix.ETH_P_IPV6, routerAdvert(me, spoofs[8].mark)),
		ether(bcast, me, unix.ETH_P_IP, udpTo(zero, 68, 9999, spoofs[9].mark)),
	}
	honest := []struct {
		name, mark string
		frame      []byte
	}{
		{"the VM's own broadcast", "NNHONEST-udp", nil},
		{"a DHCP discover from 0.0.0.0", "NNHONEST-dhcp", nil},
	}
	honest[0].frame = ether(bcast, me, unix.ETH_P_IP, udpTo(myIP, 9999, 9999, honest[0].mark))
	honest[1].frame = ether(bcast, me, unix.ETH_P_IP, udpTo(zero, 68, 67, honest[1].mark))

	receivers := []struct{ target, dev string }{{"vm2", "eth0"}, {"vm3", "eth0"}, {"controller", "eth2"}}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	counts := make([]map[string]int, len(receivers))
	ready := make(chan error, len(receivers))
	for i, r := range receivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[i] = countMarkers(l, r.target, r.dev, stop, ready)
		}()
	}
	for range receivers {
		if err := <-ready; err != nil {
			t.Fatal(err)
		}
	}
	for round := 0; round < 3; round++ {
		for _, f := range frames {
			sendFrame(t, l, "vm1", "eth0", f)
		}
		for _, h := range honest {
			sendFrame(t, l, "vm1", "eth0", h.frame)
		}
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

	for i, r := range receivers {
		for _, s := range spoofs {
			if n := counts[i][s.mark]; n != 0 {
				t.Errorf("%s: %d of 3 frames reached %s's %s", s.name, n, r.target, r.dev)
			}
		}
		for _, h := range honest {
			if counts[i][h.mark] == 0 {
				t.Errorf("%s never reached %s's %s: the count proves nothing (or the guard drops honest frames)", h.name, r.target, r.dev)
			}
		}
	}
	if got := neighMAC(t, l, "vm2", gw.String()); got != gwMAC {
		t.Errorf("vm2's ARP entry for the gateway changed from %s to %s", gwMAC, got)
	}
	if got := neighMAC(t, l, "controller", vm2.Address); strings.EqualFold(got, vm1.MAC) {
		t.Errorf("the gateway's ARP entry for vm2 now points at vm1 (%s)", got)
	}
	for _, dst := range []string{vm2.Address, vm3.Address, gw.String()} {
		if err := ping(l, "vm1", dst); err != nil {
			t.Errorf("vm1's own traffic to %s: %v", dst, err)
		}
	}
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// neighMAC is the MAC a namespace's ARP cache holds for ip ("" if none).
func neighMAC(t *testing.T, l *lab.Lab, target, ip string) string {
	t.Helper()
	f := strings.Fields(in(t, l, target, "ip", "neigh", "show", ip))
	for i := range f {
		if f[i] == "lladdr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

func ether(dst, src net.HardwareAddr, etype uint16, payload []byte) []byte {
	b := append(append(append([]byte{}, dst...), src...), byte(etype>>8), byte(etype))
	b = append(b, payload...)
	for len(b) < 60 {
		b = append(b, 0)
	}
	return b
}

func ipv4(src, dst netip.Addr, proto byte, payload []byte) []byte {
	h := make([]byte, 20)
	h[0], h[8], h[9] = 0x45, 64, proto
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	s, d := src.As4(), dst.As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(h[10:], ^uint16(sum))
	return append(h, payload...)
}

func udp(sport, dport uint16, payload []byte) []byte {
	h := make([]byte, 8)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint16(h[4:], uint16(8+len(payload)))
	return append(h, payload...)
}

func arp(op uint16, sha net.HardwareAddr, spa netip.Addr, tha net.HardwareAddr, tpa netip.Addr) []byte {
	b := []byte{0, 1, 0x08, 0x00, 6, 4, byte(op >> 8), byte(op)}
	s, d := spa.As4(), tpa.As4()
	b = append(append(b, sha...), s[:]...)
	return append(append(b, tha...), d[:]...)
}

// routerAdvert is an ICMPv6 router advertisement from the MAC's
// link-local address to all nodes, with mark after the RA body.
func routerAdvert(mac net.HardwareAddr, mark string) []byte {
	body := append([]byte{134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0}, mark...)
	h := make([]byte, 40)
	h[0], h[6], h[7] = 0x60, unix.IPPROTO_ICMPV6, 255
	binary.BigEndian.PutUint16(h[4:], uint16(len(body)))
	src := []byte{0xfe, 0x80, 0, 0, 0, 0, 0, 0, mac[0] ^ 2, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]}
	copy(h[8:], src)
	copy(h[24:], []byte{0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	return append(h, body...)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// packetSocket opens an AF_PACKET socket on dev inside a lab namespace.
func packetSocket(l *lab.Lab, target, dev string) (int, error) {
	ns, err := l.Namespace(target)
	if err != nil {
		return -1, err
	}
	fd := -1
	err = netnsdo.Do(ns, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL))); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index})
	})
	return fd, err
}

func sendFrame(t *testing.T, l *lab.Lab, target, dev string, frame []byte) {
	t.Helper()
	fd, err := packetSocket(l, target, dev)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, frame); err != nil {
		t.Fatalf("send a frame from %s: %v", target, err)
	}
}

// countMarkers counts, per NN* marker, the frames arriving on dev until
// stop closes.
func countMarkers(l *lab.Lab, target, dev string, stop <-chan struct{}, ready chan<- error) map[string]int {
	counts := map[string]int{}
	fd, err := packetSocket(l, target, dev)
	if err == nil {
		err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000})
	}
	ready <- err
	if err != nil {
		return counts
	}
	defer unix.Close(fd)
	buf := make([]byte, 65536)
	for {
		select {
		case <-stop:
			return counts
		default:
		}
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			continue
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		frame := buf[:n]
		i := bytes.Index(frame, []byte("NNSPOOF-"))
		if i < 0 {
			i = bytes.Index(frame, []byte("NNHONEST-"))
		}
		if i >= 0 {
			end := i
			for end < len(frame) && (frame[end] == '-' || frame[end] >= 'A' && frame[end] <= 'Z' || frame[end] >= 'a' && frame[end] <= 'z') {
				end++
			}
			counts[string(frame[i:end])]++
		}
	}
}
