package api

import (
	"context"
	"net/netip"

	"novanet/internal/model"
)

// Backend is what the HTTP layer needs from the network manager
// (*manager.Manager implements it). Every method that touches
// project-owned objects takes the caller's scope and enforces it: a
// project never sees or changes another project's objects. Errors are
// *model.Error values whose kind picks the HTTP status.
type Backend interface {
	// Networks (admin only; the API checks scope.Admin before calling).
	CreateNetworks(ctx context.Context, req model.NetworkCreateRequest) ([]model.Network, error)
	ListNetworks(ctx context.Context, scope model.Scope) ([]model.Network, error)
	// GetNetwork accepts an id, uuid or label.
	GetNetwork(ctx context.Context, scope model.Scope, ref string) (model.Network, error)
	DeleteNetwork(ctx context.Context, ref string) error

	// Fixed IPs (admin only).
	GetFixedIP(ctx context.Context, addr netip.Addr) (model.FixedIPDetail, error)
	SetFixedIPReserved(ctx context.Context, addr netip.Addr, reserved bool) error

	// Instances.
	BootInstance(ctx context.Context, scope model.Scope, req model.BootRequest) (model.InstanceDetail, error)
	DeleteInstance(ctx context.Context, scope model.Scope, uuid string) error
	GetInstance(ctx context.Context, scope model.Scope, uuid string) (model.InstanceDetail, error)
	// ListInstances returns up to limit instances after the one named by
	// marker ("" = from the start), in creation order.
	ListInstances(ctx context.Context, scope model.Scope, marker string, limit int) ([]model.InstanceDetail, error)
	AddInstanceSecurityGroup(ctx context.Context, scope model.Scope, uuid, group string) error
	RemoveInstanceSecurityGroup(ctx context.Context, scope model.Scope, uuid, group string) error

	// Floating IPs.
	CreateFloatingRange(ctx context.Context, req model.FloatingRangeRequest) ([]model.FloatingIP, error) // admin
	DeleteFloatingRange(ctx context.Context, ipRange string) (int, error)                                // admin
	// ListFloatingIPs lists the scope's project's floating IPs; with
	// all=true (admin) every floating IP.
	ListFloatingIPs(ctx context.Context, scope model.Scope, all bool) ([]model.FloatingIP, error)
	GetFloatingIP(ctx context.Context, scope model.Scope, ref string) (model.FloatingIP, error) // id or address
	AllocateFloatingIP(ctx context.Context, scope model.Scope, pool string) (model.FloatingIP, error)
	ReleaseFloatingIP(ctx context.Context, scope model.Scope, ref string) error
	// AssociateFloatingIP binds the floating address to the instance's
	// fixed address (fixed may be zero: the instance's first fixed IP).
	AssociateFloatingIP(ctx context.Context, scope model.Scope, floating netip.Addr, instanceUUID string, fixed netip.Addr) error
	DisassociateFloatingIP(ctx context.Context, scope model.Scope, floating netip.Addr, instanceUUID string) error
	ListFloatingPools(ctx context.Context) ([]string, error)

	// Security groups. Group refs are ids; the default group of a project
	// exists from the project's first use.
	ListSecurityGroups(ctx context.Context, scope model.Scope, all bool) ([]model.SecurityGroup, error)
	GetSecurityGroup(ctx context.Context, scope model.Scope, id int64) (model.SecurityGroup, error)
	CreateSecurityGroup(ctx context.Context, scope model.Scope, name, description string) (model.SecurityGroup, error)
	UpdateSecurityGroup(ctx context.Context, scope model.Scope, id int64, name, description string) (model.SecurityGroup, error)
	DeleteSecurityGroup(ctx context.Context, scope model.Scope, id int64) error
	CreateSecurityGroupRule(ctx context.Context, scope model.Scope, rule model.SecurityGroupRule) (model.SecurityGroupRule, error)
	DeleteSecurityGroupRule(ctx context.Context, scope model.Scope, id int64) error
	// Default rules (os-security-group-default-rules, admin): copied into
	// every new project's default group.
	ListDefaultRules(ctx context.Context) ([]model.SecurityGroupRule, error)
	CreateDefaultRule(ctx context.Context, rule model.SecurityGroupRule) (model.SecurityGroupRule, error)
	GetDefaultRule(ctx context.Context, id int64) (model.SecurityGroupRule, error)
	DeleteDefaultRule(ctx context.Context, id int64) error

	// Agents.
	HostState(ctx context.Context, host string) (model.HostState, error)
	// WaitHost blocks until the host's revision is greater than after, or
	// ctx ends; it returns the current revision either way.
	WaitHost(ctx context.Context, host string, after int64) (int64, error)
	// WatchHost is WaitHost waiting for a revision other than after and
	// answering with what changed since after (model.HostStateDelta).
	WatchHost(ctx context.Context, host string, after int64) (model.HostStateDelta, error)
	ReportApplied(ctx context.Context, host string, r model.AppliedReport) error
	RecordLease(ctx context.Context, ev model.LeaseEvent) error
	// SetHostInstancePassword stores the password a guest posted to its
	// host agent's metadata service (POST /v1/hosts/{host}/metadata-password:
	// the agent has no store of its own); only for that host's instances.
	SetHostInstancePassword(ctx context.Context, host, uuid, password string) error
	// ReportAgentVersion records the novanet version host's agent runs.
	ReportAgentVersion(ctx context.Context, host, version string) error
	// ListFixedIPs lists fixed addresses (admin; networkRef "" = all).
	ListFixedIPs(ctx context.Context, networkRef string, all, leasedOnly bool) ([]model.FixedIPRow, error)
	// AddressUsage counts addresses per network and floating pool.
	AddressUsage(ctx context.Context) ([]model.AddressUsage, error)
	// ListHosts lists every host with its roles and last report (admin).
	ListHosts(ctx context.Context) ([]model.HostReport, error)
	// Leases returns what dnsmasq on host should believe it leased for the
	// network with this bridge (for `dhcpbridge init`).
	Leases(ctx context.Context, host, bridge string) ([]model.Lease, error)
}
