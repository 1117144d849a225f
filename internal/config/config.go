// Package config loads novanet's configuration: nova.conf-style INI files
// (a [DEFAULT] section with nova's option names and defaults, plus a
// [novanet] section), NOVANET_<KEY> environment overrides, then
// command-line overrides. Values may refer to other options as $name or
// ${name} (oslo.config's interpolation, e.g. networks_path =
// $state_path/networks). Unknown keys are warnings, not errors, because
// real nova.conf files carry many options novanet does not use.
package config

import (
	"bufio"
	"fmt"
	"math/bits"
	"net"
	"net/netip"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"novanet/internal/model"
)

// Config is the typed configuration. Field tags: `opt:"name"` (DEFAULT
// section) or `opt:"name,novanet"`, and `default:"..."` (may use $vars).
type Config struct {
	// [DEFAULT], nova's names.
	Host                           string         `opt:"host"`  // default: os.Hostname
	MyIP                           netip.Addr     `opt:"my_ip"` // default: the address of the default route
	StatePath                      string         `opt:"state_path" default:"/var/lib/novanet"`
	NetworksPath                   string         `opt:"networks_path" default:"$state_path/networks"`
	NetworkManager                 string         `opt:"network_manager" default:"nova.network.manager.FlatDHCPManager"`
	FixedRange                     []netip.Prefix `opt:"fixed_range"`
	FlatNetworkBridge              string         `opt:"flat_network_bridge"`
	FlatInterface                  string         `opt:"flat_interface"`
	FlatInjected                   bool           `opt:"flat_injected" default:"false"`
	FlatNetworkDNS                 netip.Addr     `opt:"flat_network_dns"` // no default: see OPERATIONS.md
	PublicInterface                string         `opt:"public_interface" default:"eth0"`
	RoutingSourceIP                netip.Addr     `opt:"routing_source_ip" default:"$my_ip"`
	MetadataHost                   netip.Addr     `opt:"metadata_host" default:"$my_ip"`
	MetadataPort                   int            `opt:"metadata_port" default:"8775"`
	MetadataListen                 string         `opt:"metadata_listen" default:"0.0.0.0"`
	MetadataProxySharedSecret      string         `opt:"metadata_proxy_shared_secret"`
	DefaultAvailabilityZone        string         `opt:"default_availability_zone" default:"nova"`
	DMZCIDR                        []netip.Prefix `opt:"dmz_cidr"`
	MultiHost                      bool           `opt:"multi_host" default:"false"`
	NetworkHost                    string         `opt:"network_host" default:"$host"`
	DHCPLeaseTime                  int            `opt:"dhcp_lease_time" default:"120"`
	DHCPDomain                     string         `opt:"dhcp_domain" default:"novalocal"`
	DHCPBridge                     string         `opt:"dhcpbridge"`
	DnsmasqConfigFile              string         `opt:"dnsmasq_config_file"`
	ForceDHCPRelease               bool           `opt:"force_dhcp_release" default:"false"`
	FixedIPDisassociateTimeout     int            `opt:"fixed_ip_disassociate_timeout" default:"600"`
	AllowSameNetTraffic            bool           `opt:"allow_same_net_traffic" default:"true"`
	AutoAssignFloatingIP           bool           `opt:"auto_assign_floating_ip" default:"false"`
	DefaultFloatingPool            string         `opt:"default_floating_pool" default:"nova"`
	QuotaFloatingIPs               int            `opt:"quota_floating_ips" default:"10"`
	QuotaSecurityGroups            int            `opt:"quota_security_groups" default:"10"`
	QuotaSecurityGroupRules        int            `opt:"quota_security_group_rules" default:"20"`
	SendARPForHA                   bool           `opt:"send_arp_for_ha" default:"false"`
	SendARPForHACount              int            `opt:"send_arp_for_ha_count" default:"3"`
	VLANStart                      int            `opt:"vlan_start" default:"100"`
	VLANInterface                  string         `opt:"vlan_interface"`
	NumNetworks                    int            `opt:"num_networks" default:"1"`
	NetworkSize                    int            `opt:"network_size" default:"256"`
	CreateUniqueMACAddressAttempts int            `opt:"create_unique_mac_address_attempts" default:"5"`

	// [novanet]
	Listen         string        `opt:"listen,novanet" default:"127.0.0.1:8774"`
	Database       string        `opt:"database,novanet" default:"sqlite://$state_path/novanet.db"`
	TokensFile     string        `opt:"tokens_file,novanet"`
	APIURL         string        `opt:"api_url,novanet" default:"http://127.0.0.1:8774"`
	AuthToken      string        `opt:"auth_token,novanet"`
	AgentSocket    string        `opt:"agent_socket,novanet" default:"/run/novanet/agent.sock"`
	ResyncInterval time.Duration `opt:"resync_interval,novanet" default:"60s"`
	MetricsListen  string        `opt:"metrics_listen,novanet"`            // agent's /metrics address; "" = none
	LogFormat      string        `opt:"log_format,novanet" default:"text"` // text or json
	LogLevel       string        `opt:"log_level,novanet" default:"info"`  // debug, info, warn, error
	// MetadataRequireToken makes the metadata service refuse GETs without
	// an IMDSv2-style session token (401).
	MetadataRequireToken bool `opt:"metadata_require_token,novanet" default:"false"`
	// MetadataRateLimit is each source address's sustained metadata
	// requests per second; bursts of four seconds' worth pass at once.
	MetadataRateLimit int `opt:"metadata_rate_limit,novanet" default:"50"`
	// FirewallDriver programs the agent's rules: iptables (nova's chains,
	// with ipsets) or nftables (novanet's own nft tables over netlink).
	FirewallDriver string `opt:"firewall_driver,novanet" default:"iptables"`

	// Warnings are non-fatal findings (unknown keys), for the caller to log.
	Warnings []string `opt:"-"`
}

const (
	sectionDefault = "DEFAULT"
	sectionNovanet = "novanet"
)

type field struct {
	section, name, def string
	index              int
}

func fields() []field {
	t := reflect.TypeFor[Config]()
	var out []field
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("opt")
		if tag == "-" || tag == "" {
			continue
		}
		name, sec, _ := strings.Cut(tag, ",")
		if sec == "" {
			sec = sectionDefault
		}
		out = append(out, field{section: sec, name: name, def: t.Field(i).Tag.Get("default"), index: i})
	}
	return out
}

// Keys returns the option names per section, sorted (for docs and flags).
func Keys() map[string][]string {
	m := map[string][]string{}
	for _, f := range fields() {
		m[f.section] = append(m[f.section], f.name)
	}
	for _, v := range m {
		sort.Strings(v)
	}
	return m
}

// Sources are the inputs of Load, weakest first: files, then environment,
// then overrides.
type Sources struct {
	Files []string
	// Env is the environment as os.Environ returns it; nil means none.
	Env []string
	// Overrides are command-line values by option name (either section).
	Overrides map[string][]string
}

// raw holds values per section and key, in file order (repeats kept).
type raw map[string]map[string][]string

func (r raw) set(sec, key string, vals ...string) {
	if r[sec] == nil {
		r[sec] = map[string][]string{}
	}
	r[sec][key] = vals
}

// Load builds a Config from its sources and validates it.
func Load(src Sources) (*Config, error) {
	fs := fields()
	known := map[string]field{}
	for _, f := range fs {
		known[f.section+"."+f.name] = f
	}
	sectionOf := func(key string) (string, bool) {
		if _, ok := known[sectionDefault+"."+key]; ok {
			return sectionDefault, true
		}
		if _, ok := known[sectionNovanet+"."+key]; ok {
			return sectionNovanet, true
		}
		return "", false
	}

	vals := raw{}
	var warnings []string
	for _, path := range src.Files {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config file: %w", err)
		}
		fileVals, err := ParseINI(string(data), path)
		if err != nil {
			return nil, err
		}
		// A later file replaces a key of an earlier one, as in oslo.config.
		for sec, kv := range fileVals {
			for k, v := range kv {
				if _, ok := known[sec+"."+k]; !ok {
					if sec == sectionDefault || sec == sectionNovanet {
						warnings = append(warnings, fmt.Sprintf("%s: unknown option %q in [%s] ignored", path, k, sec))
					}
					continue
				}
				vals.set(sec, k, v...)
			}
		}
	}
	for _, kv := range src.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, "NOVANET_") {
			continue
		}
		key := strings.ToLower(strings.TrimPrefix(k, "NOVANET_"))
		sec, ok := sectionOf(key)
		if !ok {
			// NOVANET_URL and NOVANET_TOKEN belong to the CLI, not here.
			continue
		}
		vals.set(sec, key, v)
	}
	keys := make([]string, 0, len(src.Overrides))
	for k := range src.Overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		key := strings.ReplaceAll(k, "-", "_")
		sec, ok := sectionOf(key)
		if !ok {
			return nil, fmt.Errorf("unknown option %q; known options: %s", k, strings.Join(append(Keys()[sectionDefault], Keys()[sectionNovanet]...), ", "))
		}
		vals.set(sec, key, src.Overrides[k]...)
	}

	// Defaults that need the machine.
	if len(vals[sectionDefault]["host"]) == 0 {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("default host from hostname: %w; set host in [DEFAULT]", err)
		}
		vals.set(sectionDefault, "host", h)
	}
	if len(vals[sectionDefault]["my_ip"]) == 0 {
		vals.set(sectionDefault, "my_ip", defaultIP())
	}
	for _, f := range fs {
		if len(vals[f.section][f.name]) == 0 && f.def != "" {
			vals.set(f.section, f.name, f.def)
		}
	}

	c := &Config{Warnings: warnings}
	rv := reflect.ValueOf(c).Elem()
	var errs []string
	for _, f := range fs {
		vs := vals[f.section][f.name]
		if len(vs) == 0 {
			continue
		}
		expanded := make([]string, len(vs))
		for i, v := range vs {
			e, err := expand(v, vals, map[string]bool{f.name: true})
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", f.name, err))
				continue
			}
			expanded[i] = e
		}
		if err := setField(rv.Field(f.index), expanded); err != nil {
			errs = append(errs, fmt.Sprintf("option %s in [%s]: %v", f.name, f.section, err))
		}
	}
	if err := c.validate(); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid configuration: %s", strings.Join(errs, "; "))
	}
	return c, nil
}

func defaultIP() string {
	// A UDP "connection" sends nothing; it only asks the kernel which
	// source address the default route would use, as oslo's my_ip does.
	conn, err := net.Dial("udp4", "192.0.2.1:9")
	if err != nil {
		return "127.0.0.1"
	}
	defer conn.Close()
	if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		if a, ok := netip.AddrFromSlice(ua.IP); ok {
			return a.Unmap().String()
		}
	}
	return "127.0.0.1"
}

// expand replaces $name and ${name} with the value of that option
// (DEFAULT first, then [novanet]); $$ is a literal $.
func expand(v string, vals raw, seen map[string]bool) (string, error) {
	if !strings.Contains(v, "$") {
		return v, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '$' {
			b.WriteByte(v[i])
			continue
		}
		if i+1 < len(v) && v[i+1] == '$' {
			b.WriteByte('$')
			i++
			continue
		}
		var name string
		if i+1 < len(v) && v[i+1] == '{' {
			end := strings.IndexByte(v[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated ${ in %q", v)
			}
			name = v[i+2 : i+end]
			i += end
		} else {
			j := i + 1
			for j < len(v) && (v[j] == '_' || v[j] >= 'a' && v[j] <= 'z' || v[j] >= 'A' && v[j] <= 'Z' || v[j] >= '0' && v[j] <= '9') {
				j++
			}
			name = v[i+1 : j]
			i = j - 1
		}
		if name == "" {
			return "", fmt.Errorf("lone $ in %q; write $$ for a literal dollar", v)
		}
		if seen[name] {
			return "", fmt.Errorf("$%s refers to itself", name)
		}
		ref, ok := vals[sectionDefault][name]
		if !ok {
			ref, ok = vals[sectionNovanet][name]
		}
		if !ok || len(ref) == 0 {
			return "", fmt.Errorf("$%s in %q names no set option", name, v)
		}
		seen[name] = true
		sub, err := expand(ref[len(ref)-1], vals, seen)
		delete(seen, name)
		if err != nil {
			return "", err
		}
		b.WriteString(sub)
	}
	return b.String(), nil
}

// parseBool accepts oslo.config's spellings.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on", "1", "t", "y":
		return true, nil
	case "false", "no", "off", "0", "f", "n":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean; use true or false", s)
}

func setField(v reflect.Value, vals []string) error {
	last := strings.TrimSpace(vals[len(vals)-1])
	switch p := v.Addr().Interface().(type) {
	case *string:
		*p = last
	case *bool:
		b, err := parseBool(last)
		if err != nil {
			return err
		}
		*p = b
	case *int:
		n, err := strconv.Atoi(last)
		if err != nil {
			return fmt.Errorf("%q is not an integer", last)
		}
		*p = n
	case *time.Duration:
		d, err := time.ParseDuration(last)
		if err != nil {
			// oslo's interval options are integer seconds.
			n, nerr := strconv.Atoi(last)
			if nerr != nil {
				return fmt.Errorf("%q is not a duration; use e.g. 60s or 2m", last)
			}
			d = time.Duration(n) * time.Second
		}
		if d < 0 {
			return fmt.Errorf("%q is negative", last)
		}
		*p = d
	case *netip.Addr:
		if last == "" {
			*p = netip.Addr{}
			return nil
		}
		a, err := netip.ParseAddr(last)
		if err != nil {
			return fmt.Errorf("%q is not an IP address", last)
		}
		*p = a
	case *[]netip.Prefix:
		*p = nil
		for _, v := range vals {
			for _, item := range strings.Split(v, ",") {
				item = strings.TrimSpace(item)
				if item == "" {
					continue
				}
				pr, err := netip.ParsePrefix(item)
				if err != nil {
					return fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8", item)
				}
				if pr.Masked() != pr {
					return fmt.Errorf("%q has host bits set; did you mean %s?", item, pr.Masked())
				}
				*p = append(*p, pr)
			}
		}
	default:
		return fmt.Errorf("unsupported option type %s", v.Type())
	}
	return nil
}

func (c *Config) validate() error {
	var errs []string
	if model.CheckPort("metadata_port", c.MetadataPort) != nil {
		errs = append(errs, fmt.Sprintf("metadata_port %d is not a TCP port (%d-%d)", c.MetadataPort, model.MinPort, model.MaxPort))
	}
	if c.MetadataListen != "" {
		if _, err := netip.ParseAddr(c.MetadataListen); err != nil {
			errs = append(errs, fmt.Sprintf("metadata_listen %q is not an IP address (0.0.0.0 listens on all)", c.MetadataListen))
		}
	}
	if c.MetadataRateLimit < 1 {
		errs = append(errs, fmt.Sprintf("metadata_rate_limit %d must be at least 1 request per second per guest (a boot makes about 30)", c.MetadataRateLimit))
	}
	for name, v := range map[string]int{
		"dhcp_lease_time": c.DHCPLeaseTime, "fixed_ip_disassociate_timeout": c.FixedIPDisassociateTimeout,
		"quota_floating_ips": c.QuotaFloatingIPs, "num_networks": c.NumNetworks - 1,
		"network_size": c.NetworkSize - 4, "create_unique_mac_address_attempts": c.CreateUniqueMACAddressAttempts - 1,
		"send_arp_for_ha_count": c.SendARPForHACount,
	} {
		if v < 0 {
			errs = append(errs, fmt.Sprintf("%s is too small", name))
		}
	}
	if _, ok := networkManagers[managerName(c.NetworkManager)]; !ok && strings.TrimSpace(c.NetworkManager) != "" {
		errs = append(errs, fmt.Sprintf("network_manager %q is unknown; use nova.network.manager.FlatDHCPManager (FlatManager and VlanManager are accepted but not built yet)", c.NetworkManager))
	}
	for _, p := range c.FixedRange {
		if _, err := model.ParseRange("fixed_range", p.String(), 8); err != nil {
			errs = append(errs, err.Error())
		} else if err := model.CheckUsablePrefix("fixed_range", p); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if c.FlatNetworkDNS.IsValid() && !c.FlatNetworkDNS.Is4() {
		errs = append(errs, fmt.Sprintf("flat_network_dns %s is not IPv4: give an IPv4 resolver, or leave it unset for guests to use their network's dnsmasq", c.FlatNetworkDNS))
	}
	if c.NetworkSize > 0 && bits.OnesCount(uint(c.NetworkSize)) != 1 || c.NetworkSize > model.MaxNetworkSize {
		errs = append(errs, fmt.Sprintf("network_size %d is not a power of two from 4 to %d: use e.g. 256 for /24 subnets", c.NetworkSize, model.MaxNetworkSize))
	}
	if c.NumNetworks > model.MaxNetworksPerRequest {
		errs = append(errs, fmt.Sprintf("num_networks %d is more than %d networks per create", c.NumNetworks, model.MaxNetworksPerRequest))
	}
	if c.VLANStart < model.MinVLAN || c.VLANStart > model.MaxVLAN {
		errs = append(errs, fmt.Sprintf("vlan_start %d is outside %d-%d", c.VLANStart, model.MinVLAN, model.MaxVLAN))
	}
	if c.FlatNetworkBridge != "" {
		if err := model.CheckIfName("flat_network_bridge", c.FlatNetworkBridge); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Sprintf("listen %q is not host:port: %v", c.Listen, err))
	}
	if c.APIURL != "" && !strings.HasPrefix(c.APIURL, "http://") && !strings.HasPrefix(c.APIURL, "https://") {
		errs = append(errs, fmt.Sprintf("api_url %q must start with http:// or https://", c.APIURL))
	}
	if c.Host == "" {
		errs = append(errs, "host is empty; set host in [DEFAULT]")
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			errs = append(errs, fmt.Sprintf("metrics_listen %q is not host:port: %v", c.MetricsListen, err))
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Sprintf("log_format %q is unknown; use text or json", c.LogFormat))
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "warning", "error":
	default:
		errs = append(errs, fmt.Sprintf("log_level %q is unknown; use debug, info, warn or error", c.LogLevel))
	}
	if c.FirewallDriver != "iptables" && c.FirewallDriver != "nftables" {
		errs = append(errs, fmt.Sprintf("firewall_driver %q is unknown; use iptables or nftables", c.FirewallDriver))
	}
	if c.ResyncInterval > 0 && c.ResyncInterval < time.Second {
		errs = append(errs, fmt.Sprintf("resync_interval %s is below 1s", c.ResyncInterval))
	}
	sort.Strings(errs)
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// ParseINI parses nova.conf-style INI text: [section] headers, key = value
// (or key: value), '#' and ';' comment lines, repeated keys kept in order.
// Keys before any header belong to DEFAULT.
func ParseINI(text, name string) (map[string]map[string][]string, error) {
	out := map[string]map[string][]string{}
	sec := sectionDefault
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") || len(line) < 3 {
				return nil, fmt.Errorf("%s:%d: malformed section header %q", name, n, line)
			}
			sec = strings.TrimSpace(line[1 : len(line)-1])
			if strings.EqualFold(sec, sectionDefault) {
				sec = sectionDefault
			}
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i <= 0 {
			return nil, fmt.Errorf("%s:%d: expected 'key = value', got %q", name, n, line)
		}
		key := strings.TrimSpace(line[:i])
		val := strings.TrimSpace(line[i+1:])
		if len(val) >= 2 && (val[0] == '"' && val[len(val)-1] == '"' || val[0] == '\'' && val[len(val)-1] == '\'') {
			val = val[1 : len(val)-1]
		}
		if out[sec] == nil {
			out[sec] = map[string][]string{}
		}
		out[sec][key] = append(out[sec][key], val)
	}
	return out, sc.Err()
}
