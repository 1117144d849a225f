package wire

// The response envelopes: nova wraps every view in a key naming it.

type NetworkList[T any] struct {
	Networks List[T] `json:"networks"`
}

type NetworkOne[T any] struct {
	Network T `json:"network"`
}

type FloatingIPList struct {
	FloatingIPs List[FloatingIP] `json:"floating_ips"`
}

type FloatingIPOne struct {
	FloatingIP FloatingIP `json:"floating_ip"`
}

type BulkFloatingIPList struct {
	Info List[BulkFloatingIP] `json:"floating_ip_info"`
}

type PoolList struct {
	Pools List[Pool] `json:"floating_ip_pools"`
}

type FixedIPOne struct {
	FixedIP FixedIP `json:"fixed_ip"`
}

type SecurityGroupList struct {
	Groups List[SecurityGroup] `json:"security_groups"`
}

type SecurityGroupOne struct {
	Group SecurityGroup `json:"security_group"`
}

type RuleOne struct {
	Rule Rule `json:"security_group_rule"`
}

type DefaultRuleList struct {
	Rules List[DefaultRule] `json:"security_group_default_rules"`
}

type DefaultRuleOne struct {
	Rule DefaultRule `json:"security_group_default_rule"`
}
