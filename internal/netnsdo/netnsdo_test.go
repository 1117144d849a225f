package netnsdo_test

import (
	"net"
	"os"
	"strings"
	"testing"

	"novanet/internal/netnsdo"
	"novanet/internal/nettest"
)

func TestDoRunsInsideAndComesBack(t *testing.T) {
	nettest.RequireRoot(t)
	ns := nettest.Netns(t, "nndo")
	nettest.Run(t, ns, "ip", "addr", "add", "192.0.2.77/32", "dev", "lo")
	self := func() string {
		l, _ := os.Readlink("/proc/thread-self/ns/net")
		return l
	}
	before := self()
	var inside []string
	var ln net.Listener
	err := netnsdo.Do(ns, func() error {
		addrs, err := net.InterfaceAddrs()
		for _, a := range addrs {
			inside = append(inside, a.String())
		}
		if err != nil {
			return err
		}
		// A socket made inside stays inside.
		ln, err = net.Listen("tcp", "192.0.2.77:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if !strings.Contains(strings.Join(inside, " "), "192.0.2.77/32") {
		t.Errorf("f did not run in %s: saw %v", ns, inside)
	}
	if self() != before {
		t.Error("the calling thread changed namespace")
	}
	if err := netnsdo.Do("nnnosuchns", func() error { return nil }); err == nil {
		t.Error("a missing namespace was accepted")
	}
}
