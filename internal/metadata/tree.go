package metadata

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"novanet/internal/model"
)

// ec2Versions are the EC2 API versions nova's metadata service lists
// (nova/api/metadata/base.py VERSIONS); "latest" means the last.
var ec2Versions = []string{
	"1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10",
	"2007-12-15", "2008-02-01", "2008-09-01", "2009-04-04",
}

// osVersions are nova's OpenStack metadata versions (OPENSTACK_VERSIONS),
// Folsom to Epoxy; versions dated after today are hidden from the listing
// but answered when asked for, as nova does.
var osVersions = []string{
	"2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30",
	"2016-10-06", "2017-02-22", "2018-08-27", "2020-10-14", "2025-04-04",
}

const (
	osGrizzly   = "2013-04-04"
	osHavana    = "2013-10-17"
	osLiberty   = "2015-10-15"
	osNewtonOne = "2016-06-30"
	osNewtonTwo = "2016-10-06"
	osVictoria  = "2020-10-14"
)

// item is one answer: a listing or a value.
type item struct {
	body        string
	contentType string
}

// dir is an EC2 listing: children by name. A child dir printed under
// another name (public-keys' "0=keyname") sets label.
type dir struct {
	label    string
	children map[string]any // string (value) or *dir
}

func newDir() *dir { return &dir{children: map[string]any{}} }

func (d *dir) listing() string {
	names := make([]string, 0, len(d.children))
	for n := range d.children {
		names = append(names, n)
	}
	sort.Strings(names)
	lines := make([]string, 0, len(names))
	for _, n := range names {
		switch c := d.children[n].(type) {
		case *dir:
			if c.label != "" {
				lines = append(lines, c.label)
			} else {
				lines = append(lines, n+"/")
			}
		default:
			lines = append(lines, n)
		}
	}
	return strings.Join(lines, "\n")
}

// lookup answers path (already cleaned) for md.
func lookup(md model.InstanceMetadata, path string, now time.Time) (item, bool) {
	tokens := strings.Split(strings.TrimPrefix(path, "/"), "/")
	switch tokens[0] {
	case "openstack":
		return openstackItem(md, tokens[1:], now)
	case "ec2":
		tokens = tokens[1:]
	}
	if len(tokens) == 0 || tokens[0] == "" {
		return item{strings.Join(append(slices.Clone(ec2Versions), "latest"), "\n"), textPlain}, true
	}
	version, ok := ec2Version(tokens[0])
	if !ok {
		return item{}, false
	}
	if len(tokens) == 3 && tokens[1] == "meta-data" {
		// The common read, one plain key, without building the tree.
		if v, ok := ec2Leaf(md, version, tokens[2]); ok {
			return item{v, textPlain}, true
		}
	}
	var node any = ec2Tree(md, version)
	for _, t := range tokens[1:] {
		d, isDir := node.(*dir)
		if !isDir {
			return item{}, false
		}
		if node, ok = d.children[t]; !ok {
			return item{}, false
		}
	}
	if d, isDir := node.(*dir); isDir {
		return item{d.listing(), textPlain}, true
	}
	return item{node.(string), textPlain}, true
}

func ec2Version(v string) (string, bool) {
	if v == "latest" {
		return ec2Versions[len(ec2Versions)-1], true
	}
	return v, slices.Contains(ec2Versions, v)
}

func since(versions []string, required, requested string) bool {
	return slices.Index(versions, requested) >= slices.Index(versions, required)
}

// ec2Leaves are the meta-data keys that are plain values, with the
// version that introduced each (nova's get_ec2_metadata).
var ec2Leaves = []struct{ key, since string }{
	{"ami-id", "1.0"}, {"ami-launch-index", "1.0"}, {"ami-manifest-path", "1.0"},
	{"instance-id", "1.0"}, {"hostname", "1.0"}, {"local-ipv4", "1.0"},
	{"reservation-id", "1.0"}, {"security-groups", "1.0"},
	{"local-hostname", "2007-01-19"}, {"public-hostname", "2007-01-19"}, {"public-ipv4", "2007-01-19"},
	{"instance-type", "2007-08-29"}, {"instance-action", "2008-09-01"},
}

// ec2Leaf returns a plain meta-data value, if version has key.
func ec2Leaf(md model.InstanceMetadata, version, key string) (string, bool) {
	i := slices.IndexFunc(ec2Leaves, func(l struct{ key, since string }) bool { return l.key == key })
	if i < 0 || !since(ec2Versions, ec2Leaves[i].since, version) {
		return "", false
	}
	switch key {
	case "ami-id":
		return "ami-00000000", true
	case "ami-launch-index":
		return strconv.Itoa(md.LaunchIndex), true
	case "ami-manifest-path":
		return "FIXME", true // nova's literal value
	case "instance-id":
		return EC2InstanceID(md.UUID), true
	case "hostname", "local-hostname", "public-hostname":
		return fullHostname(md), true
	case "local-ipv4":
		return md.Address.String(), true
	case "reservation-id":
		return reservationID(md.UUID), true
	case "security-groups":
		return strings.Join(md.SecurityGroups, "\n"), true
	case "public-ipv4":
		if md.FloatingAddress.IsValid() {
			return md.FloatingAddress.String(), true
		}
		return "", true
	case "instance-type":
		return "", true // novanet is told no flavor; nova answered the flavor name
	case "instance-action":
		return "none", true
	}
	return "", false
}

// ec2Tree is nova's get_ec2_metadata for one version.
func ec2Tree(md model.InstanceMetadata, version string) *dir {
	m := newDir()
	for _, l := range ec2Leaves {
		if v, ok := ec2Leaf(md, version, l.key); ok {
			m.children[l.key] = v
		}
	}
	if md.KeyName != "" {
		key := newDir()
		key.label = "0=" + md.KeyName
		key.children["openssh-key"] = md.KeyData
		keys := newDir()
		keys.children["0"] = key
		m.children["public-keys"] = keys
	}
	if since(ec2Versions, "2007-12-15", version) {
		bdm := newDir()
		bdm.children["ami"] = "vda"
		bdm.children["root"] = "/dev/vda"
		m.children["block-device-mapping"] = bdm
	}
	if since(ec2Versions, "2008-02-01", version) {
		p := newDir()
		p.children["availability-zone"] = md.AvailabilityZone
		m.children["placement"] = p
	}
	top := newDir()
	top.children["meta-data"] = m
	if md.UserData != "" {
		top.children["user-data"] = md.UserData
	}
	return top
}

// EC2InstanceID is the i-xxxxxxxx id the EC2 tree gives an instance: the
// first 8 hex digits of its uuid (nova used its database id, which
// novanet does not have).
func EC2InstanceID(uuid string) string {
	h := strings.ReplaceAll(uuid, "-", "")
	if len(h) < 8 {
		h = strings.Repeat("0", 8-len(h)) + h
	}
	return "i-" + strings.ToLower(h[:8])
}

func reservationID(uuid string) string {
	sum := sha256.Sum256([]byte("reservation:" + uuid))
	return "r-" + hex.EncodeToString(sum[:4])
}

func fullHostname(md model.InstanceMetadata) string {
	if md.DHCPDomain != "" {
		return md.Hostname + "." + md.DHCPDomain
	}
	return md.Hostname
}

func osVersion(v string) (string, bool) {
	if v == "latest" {
		return osVersions[len(osVersions)-1], true
	}
	return v, slices.Contains(osVersions, v)
}

func openstackItem(md model.InstanceMetadata, tokens []string, now time.Time) (item, bool) {
	if len(tokens) == 0 {
		today := now.UTC().Format("2006-01-02")
		var vs []string
		for _, v := range osVersions {
			if v <= today {
				vs = append(vs, v)
			}
		}
		return item{strings.Join(append(vs, "latest"), "\n"), textPlain}, true
	}
	version, ok := osVersion(tokens[0])
	if !ok {
		return item{}, false
	}
	if len(tokens) == 1 {
		return item{strings.Join(osFiles(md, version), "\n"), textPlain}, true
	}
	if len(tokens) != 2 {
		return item{}, false
	}
	switch name := tokens[1]; {
	case name == "meta_data.json":
		return jsonItem(metaDataJSON(md, version)), true
	case name == "user_data" && md.UserData != "":
		return item{md.UserData, textPlain}, true
	case name == "password" && since(osVersions, osGrizzly, version):
		return item{md.Password, textPlain}, true
	case name == "vendor_data.json" && since(osVersions, osHavana, version):
		return item{"{}", appJSON}, true
	case name == "network_data.json" && since(osVersions, osLiberty, version):
		return jsonItem(networkData(md)), true
	case name == "vendor_data2.json" && since(osVersions, osNewtonTwo, version):
		return item{`{"static": {}}`, appJSON}, true
	}
	return item{}, false
}

// osFiles is nova's _handle_version listing.
func osFiles(md model.InstanceMetadata, version string) []string {
	out := []string{"meta_data.json"}
	if md.UserData != "" {
		out = append(out, "user_data")
	}
	if since(osVersions, osGrizzly, version) {
		out = append(out, "password")
	}
	if since(osVersions, osHavana, version) {
		out = append(out, "vendor_data.json")
	}
	if since(osVersions, osLiberty, version) {
		out = append(out, "network_data.json")
	}
	if since(osVersions, osNewtonTwo, version) {
		out = append(out, "vendor_data2.json")
	}
	return out
}

func jsonItem(v any) item {
	b, err := json.Marshal(v)
	if err != nil {
		panic("metadata: marshal: " + err.Error()) // only plain maps and strings
	}
	return item{string(b), appJSON}
}

// metaData is meta_data.json; fields a version lacks are left out.
type metaData struct {
	UUID             string            `json:"uuid"`
	Name             string            `json:"name"`
	Hostname         string            `json:"hostname"`
	LaunchIndex      int               `json:"launch_index"`
	AvailabilityZone string            `json:"availability_zone"`
	Meta             map[string]string `json:"meta"`
	PublicKeys       map[string]string `json:"public_keys,omitempty"`
	Keys             []metaKey         `json:"keys,omitempty"`
	RandomSeed       string            `json:"random_seed,omitempty"`
	ProjectID        *string           `json:"project_id,omitempty"`
	Devices          *[]struct{}       `json:"devices,omitempty"`
	DedicatedCPUs    *[]int            `json:"dedicated_cpus,omitempty"`
}

type metaKey struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Data string `json:"data"`
}

func metaDataJSON(md model.InstanceMetadata, version string) metaData {
	m := metaData{UUID: md.UUID, Name: md.Hostname, Hostname: fullHostname(md), LaunchIndex: md.LaunchIndex,
		AvailabilityZone: md.AvailabilityZone, Meta: map[string]string{}}
	if md.KeyName != "" {
		m.PublicKeys = map[string]string{md.KeyName: md.KeyData}
		m.Keys = []metaKey{{Name: md.KeyName, Type: "ssh", Data: md.KeyData}}
	}
	if since(osVersions, osGrizzly, version) {
		seed := make([]byte, 512)
		_, _ = rand.Read(seed)
		m.RandomSeed = base64.StdEncoding.EncodeToString(seed)
	}
	if since(osVersions, osLiberty, version) {
		m.ProjectID = &md.ProjectID
	}
	if since(osVersions, osNewtonOne, version) {
		m.Devices = &[]struct{}{}
	}
	if since(osVersions, osVictoria, version) {
		m.DedicatedCPUs = &[]int{}
	}
	return m
}

// networkData is nova's network_data.json for the interface the request
// came from: a flatdhcp network is ipv4_dhcp (the guest asks dnsmasq), a
// flat one static ipv4; both carry the address so either kind of client
// can configure itself.
func networkData(md model.InstanceMetadata) map[string]any {
	link := md.Device
	if link == "" {
		link = "interface0"
	}
	kind := "ipv4"
	if md.Network.Kind != model.KindFlat {
		kind = "ipv4_dhcp"
	}
	var routes []map[string]string
	if md.Gateway.IsValid() {
		routes = append(routes, map[string]string{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": md.Gateway.String()})
	}
	services := []map[string]string{}
	for _, d := range md.DNS {
		services = append(services, map[string]string{"type": "dns", "address": d.String()})
	}
	l := map[string]any{"id": link, "vif_id": md.VIFUUID, "type": "bridge", "ethernet_mac_address": md.MAC}
	if md.Network.MTU > 0 {
		l["mtu"] = md.Network.MTU
	} else {
		l["mtu"] = nil
	}
	n := map[string]any{
		"id": "network0", "type": kind, "link": link, "network_id": md.Network.UUID,
		"ip_address": md.Address.String(), "netmask": model.PrefixMask(md.Network.CIDR).String(),
		"routes": routes, "services": services,
	}
	if routes == nil {
		n["routes"] = []any{}
	}
	return map[string]any{"links": []any{l}, "networks": []any{n}, "services": services}
}
