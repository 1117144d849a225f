package wire

// The response envelopes: nova wraps every view in a key naming it.

// NetworkList answers GET os-networks and os-tenant-networks.
type NetworkList[T any] struct {
	Networks List[T] `json:"networks"`
}

// NetworkOne answers GET and POST of one network.
type NetworkOne[T any] struct {
	Network T `json:"network"`
}

// FloatingIPList answers GET os-floating-ips.
type FloatingIPList struct {
	FloatingIPs List[FloatingIP] `json:"floating_ips"`
}

// FloatingIPOne answers GET and POST of one floating IP.
type FloatingIPOne struct {
	FloatingIP FloatingIP `json:"floating_ip"`
}

// BulkFloatingIPList answers GET os-floating-ips-bulk.
type BulkFloatingIPList struct {
	Info List[BulkFloatingIP] `json:"floating_ip_info"`
}

// PoolList answers GET os-floating-ip-pools.
type PoolList struct {
	Pools List[Pool] `json:"floating_ip_pools"`
}

// FixedIPOne answers GET os-fixed-ips/{address}.
type FixedIPOne struct {
	FixedIP FixedIP `json:"fixed_ip"`
}

// SecurityGroupList answers GET os-security-groups and servers/{id}/os-security-groups.
type SecurityGroupList struct {
	Groups List[SecurityGroup] `json:"security_groups"`
}

// SecurityGroupOne answers GET, POST and PUT of one security group.
type SecurityGroupOne struct {
	Group SecurityGroup `json:"security_group"`
}

// RuleOne answers POST os-security-group-rules.
type RuleOne struct {
	Rule Rule `json:"security_group_rule"`
}

// DefaultRuleList answers GET os-security-group-default-rules.
type DefaultRuleList struct {
	Rules List[DefaultRule] `json:"security_group_default_rules"`
}

// DefaultRuleOne answers GET and POST of one default rule.
type DefaultRuleOne struct {
	Rule DefaultRule `json:"security_group_default_rule"`
}
