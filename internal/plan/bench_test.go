package plan

import (
	"fmt"
	"net/netip"
	"testing"

	"novanet/internal/model"
)

// hostWithInstances is a multi-host compute serving n local instances.
func hostWithInstances(n int) (model.HostState, Options) {
	c := seedMultiHost()["multi-compute-1"]
	st := c.st
	hn := st.Networks[0]
	hn.Network.CIDR = p("10.0.0.0/16")
	hn.Instances, hn.DHCPHosts = nil, nil
	base := a("10.0.1.0").As4()
	for i := 0; i < n; i++ {
		addr := netip.AddrFrom4([4]byte{base[0], base[1] + byte(i/256), byte(i % 256), base[3]})
		in := vm(fmt.Sprintf("00000000-0000-4000-8000-%012d", i), fmt.Sprintf("vm-%d", i), addr.String(),
			randomMAC(i), fmt.Sprintf("tap%011d", i))
		in.VIFID = int64(i + 1) // as the server sends it: the instance firewall is planned
		hn.Instances = append(hn.Instances, in)
		hn.DHCPHosts = append(hn.DHCPHosts, dhcpHost(in))
	}
	st.Networks = []model.HostNetwork{hn}
	return st, c.o
}

func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		st, o := hostWithInstances(n)
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := Build(st, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// randomMAC is instance i's MAC, scattered as real random MACs are (so
// MAC order and address order differ) but unique: odd multipliers are
// bijective modulo 2^24.
func randomMAC(i int) string {
	h := uint32(i) * 2654435761 & 0xffffff
	return fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", h>>16&0xff, h>>8&0xff, h&0xff)
}
