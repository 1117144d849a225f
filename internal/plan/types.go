// Package plan turns a host's desired state (model.HostState) and the
// agent's local options into a Plan: the bridges, addresses, sysctls,
// dnsmasq instances and firewall rules the host should have. It is pure:
// no exec, no netlink, no files. Appliers under internal/datapath make the
// kernel match a Plan; renderers here turn parts of it into text (dnsmasq
// argv and host entries, iptables-restore lines) and later trace/doctor
// read the same Plan.
package plan

import "net/netip"

// Options are the host-local settings (nova.conf options read by this
// host's agent) the planner needs.
type Options struct {
	Host string
	// FlatInterface is enslaved to every flat/flatdhcp bridge unless the
	// network names its own bridge_interface.
	FlatInterface string
	// PublicInterface carries NAT'd and floating traffic.
	PublicInterface string
	// RoutingSourceIP is the SNAT source for fixed_range (nova: $my_ip).
	RoutingSourceIP netip.Addr
	MetadataHost    netip.Addr
	MetadataPort    int // default model.DefaultMetadataPort
	DMZCIDRs        []netip.Prefix
	// NetworksPath is where dnsmasq files live (nova: $state_path/networks).
	NetworksPath string
	// DHCPBridge is the path dnsmasq runs as --dhcp-script.
	DHCPBridge string
	// DnsmasqConfigFile is passed as --conf-file (may be empty, as in nova).
	DnsmasqConfigFile string
	// MetadataAPI: this host runs the metadata API (nova-api's wrapped
	// chains and its INPUT accept rule are planned here).
	MetadataAPI bool
}

// Plan is the whole desired datapath of one host.
type Plan struct {
	Host     string    `json:"host"`
	Revision int64     `json:"revision"`
	Sysctls  []Sysctl  `json:"sysctls"`
	Bridges  []Bridge  `json:"bridges"`
	Dnsmasq  []Dnsmasq `json:"dnsmasq"`
	// Releases are DHCPRELEASEs to send to this host's dnsmasq.
	Releases []Release `json:"releases"`
	// FloatingAddrs are the floating /32 addresses to hold on public
	// interfaces, with the fixed address each is NATed to.
	FloatingAddrs []FloatingAddr `json:"floating_addrs"`
	Firewall      Firewall       `json:"firewall"`
	// Warnings name parts of the host state this planner left out (a
	// network kind it does not handle yet), for the agent to report.
	Warnings []string `json:"warnings,omitempty"`
}

// Sysctl is one /proc/sys setting, Key in dotted form
// ("net.ipv4.ip_forward").
type Sysctl struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Bridge is one Linux bridge and what hangs off it.
type Bridge struct {
	Name string `json:"name"`
	// Interface is the physical (or VLAN) interface to enslave, set
	// promiscuous; its IPv4 addresses and routes move to the bridge.
	Interface string `json:"interface,omitempty"`
	// VLAN, when non-zero, means Interface is a VLAN device to create on
	// VLANParent with this id.
	VLAN       int    `json:"vlan,omitempty"`
	VLANParent string `json:"vlan_parent,omitempty"`
	MTU        int    `json:"mtu,omitempty"`
	// Addresses the bridge carries (gateway or host address with the
	// network's prefix length). An address novanet added earlier and no
	// longer lists is removed; addresses moved from Interface or put there
	// by anyone else stay.
	Addresses []netip.Prefix `json:"addresses"`
	// Ports are instance tap devices to enslave as soon as they appear.
	Ports []Port `json:"ports"`
}

// Port is an instance's tap on a bridge.
type Port struct {
	Device       string     `json:"device"`
	MAC          string     `json:"mac"`
	Address      netip.Addr `json:"address"`
	InstanceUUID string     `json:"instance_uuid"`
}

// Dnsmasq is one dnsmasq process serving one network on this host.
type Dnsmasq struct {
	// Name identifies the process and its files ("nova-br100").
	Name   string `json:"name"`
	Bridge string `json:"bridge"`
	// ListenAddress is the bridge address dnsmasq binds to (also the
	// source of DHCPRELEASEs and the server id).
	ListenAddress netip.Addr `json:"listen_address"`
	// Args is the complete argv after the program name. A change in Args
	// means a restart; a change in Hosts only means new/removed files.
	Args []string `json:"args"`
	// PidFile, HostsDir and LogFile are paths named in Args. dnsmasq
	// logs to LogFile, not syslog (which containers lack), so the reason
	// it died can be shown.
	PidFile  string `json:"pid_file"`
	HostsDir string `json:"hosts_dir"`
	LogFile  string `json:"log_file"`
	// Hosts are the static entries, one file each in HostsDir.
	Hosts []HostEntry `json:"hosts"`
}

// HostEntry is one static DHCP host: FileName in HostsDir and its Line
// ("fa:16:3e:..,vm1.novalocal,10.0.0.3").
type HostEntry struct {
	FileName string `json:"file_name"`
	Line     string `json:"line"`
}

// Release is one DHCPRELEASE to send.
type Release struct {
	Bridge  string     `json:"bridge"`
	Server  netip.Addr `json:"server"`
	MAC     string     `json:"mac"`
	Address netip.Addr `json:"address"`
}

// InterfaceAddr is an address to hold on an interface.
type InterfaceAddr struct {
	Interface string       `json:"interface"`
	Address   netip.Prefix `json:"address"`
}

// FloatingAddr is a floating address held on Interface and NATed to
// Fixed.
type FloatingAddr struct {
	InterfaceAddr
	Fixed netip.Addr `json:"fixed"`
	// Port is the instance's tap when the instance runs on this host: it
	// gets hairpin mode, so the instance reaches its own floating address
	// (br_netfilter DNATs that frame in the bridge and sends it back out
	// the port it came in on).
	Port string `json:"port,omitempty"`
}

// Firewall is the rule model: tables of chains of typed rules. Every chain
// here is owned by novanet; Jumps are the rules novanet owns inside
// built-in chains.
type Firewall struct {
	Tables []Table `json:"tables"`
	// Sets are the address sets rules name (SourceSet): one per source
	// security group, updated in place (see instancefw.go).
	Sets []AddrSet `json:"sets,omitempty"`
	// Guard is the L2 anti-spoofing of instance ports (see l2guard.go).
	Guard L2Guard `json:"l2_guard,omitzero"`
}

// Table is one iptables table ("filter", "nat").
type Table struct {
	Name   string  `json:"name"`
	Chains []Chain `json:"chains"`
	// Jumps into owned chains from built-in chains, in order. They go
	// first in their built-in chain so other programs' rules (a Docker
	// FORWARD DROP) do not shadow them.
	Jumps []Jump `json:"jumps"`
}

// Chain is an owned chain and its rules in order.
type Chain struct {
	Name  string `json:"name"`
	Rules []Rule `json:"rules"`
}

// Jump is a rule in a built-in chain that jumps into an owned one.
type Jump struct {
	From string `json:"from"` // INPUT, FORWARD, OUTPUT, PREROUTING, POSTROUTING
	To   string `json:"to"`
}

// Rule is one rule with typed matches and a target. Zero values mean "not
// matched on".
type Rule struct {
	InInterface  string       `json:"in_interface,omitempty"`
	OutInterface string       `json:"out_interface,omitempty"`
	Source       netip.Prefix `json:"source,omitzero"`
	Destination  netip.Prefix `json:"destination,omitzero"`
	// SourceSet names an ipset (nft set) of source addresses.
	SourceSet string    `json:"source_set,omitempty"`
	Protocol  string    `json:"protocol,omitempty"` // tcp, udp, icmp
	SrcPorts  PortRange `json:"src_ports,omitzero"`
	DstPorts  PortRange `json:"dst_ports,omitzero"`
	// ICMPType/ICMPCode are -1 or unset (nil) for any.
	ICMPType *int `json:"icmp_type,omitempty"`
	ICMPCode *int `json:"icmp_code,omitempty"`
	// State matches conntrack state via "-m state --state" (nova's
	// instance chains); CTState via "-m conntrack --ctstate", negated
	// when CTStateNegate.
	State         []string `json:"state,omitempty"`
	CTState       []string `json:"ctstate,omitempty"`
	CTStateNegate bool     `json:"ctstate_negate,omitempty"`
	PhysdevIn     string   `json:"physdev_in,omitempty"`
	PhysdevOut    string   `json:"physdev_out,omitempty"`
	Comment       string   `json:"comment,omitempty"`
	Target        Target   `json:"target"`
}

// PortRange is an inclusive port range; zero is "any".
type PortRange struct {
	From uint16 `json:"from"`
	To   uint16 `json:"to"`
}

// IsZero reports whether the range matches any port.
func (p PortRange) IsZero() bool { return p.From == 0 && p.To == 0 }

// Verdict is a rule's target kind.
type Verdict string

const (
	Accept Verdict = "ACCEPT"
	Drop   Verdict = "DROP"
	Return Verdict = "RETURN"
	Goto   Verdict = "JUMP" // jump to Target.Chain
	DNAT   Verdict = "DNAT"
	SNAT   Verdict = "SNAT"
)

// Target is what a matching rule does.
type Target struct {
	Verdict Verdict `json:"verdict"`
	Chain   string  `json:"chain,omitempty"` // for Goto
	// ToAddr/ToPort for DNAT (ToPort 0 = unchanged) and SNAT.
	ToAddr netip.Addr `json:"to_addr,omitzero"`
	ToPort uint16     `json:"to_port,omitempty"`
}
