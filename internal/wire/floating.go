package wire

import (
	"net/netip"

	"novanet/internal/model"
)

// FloatingIP is nova's os-floating-ips view plus novanet's project_id,
// host, interface and auto_assigned.
type FloatingIP struct {
	AutoAssigned bool    `json:"auto_assigned"`
	FixedIP      *string `json:"fixed_ip"`
	Host         *string `json:"host"`
	ID           int64   `json:"id"`
	InstanceID   *string `json:"instance_id"`
	Interface    *string `json:"interface"`
	IP           string  `json:"ip"`
	Pool         string  `json:"pool"`
	ProjectID    *string `json:"project_id"`
}

// NewFloatingIP is the os-floating-ips view of f.
func NewFloatingIP(f model.FloatingIP) FloatingIP {
	return FloatingIP{AutoAssigned: f.AutoAssigned, FixedIP: addrOrNull(f.FixedAddress), Host: stringOrNull(f.Host),
		ID: f.ID, InstanceID: stringOrNull(f.InstanceUUID), Interface: stringOrNull(f.Interface),
		IP: f.Address.String(), Pool: f.Pool, ProjectID: stringOrNull(f.ProjectID)}
}

// Model reads the view back.
func (f FloatingIP) Model() model.FloatingIP {
	out := model.FloatingIP{ID: f.ID, Pool: f.Pool, ProjectID: deref(f.ProjectID), Host: deref(f.Host),
		Interface: deref(f.Interface), AutoAssigned: f.AutoAssigned, FixedAddress: parseAddr(f.FixedIP),
		InstanceUUID: deref(f.InstanceID)}
	out.Address, _ = netip.ParseAddr(f.IP)
	return out
}

// BulkFloatingIP is nova's os-floating-ips-bulk view (interface is always
// a string there, unlike os-floating-ips).
type BulkFloatingIP struct {
	Address      string  `json:"address"`
	FixedIP      *string `json:"fixed_ip"`
	Host         *string `json:"host"`
	ID           int64   `json:"id"`
	InstanceUUID *string `json:"instance_uuid"`
	Interface    string  `json:"interface"`
	Pool         string  `json:"pool"`
	ProjectID    *string `json:"project_id"`
}

// NewBulkFloatingIP is the os-floating-ips-bulk view of f.
func NewBulkFloatingIP(f model.FloatingIP) BulkFloatingIP {
	return BulkFloatingIP{Address: f.Address.String(), FixedIP: addrOrNull(f.FixedAddress), Host: stringOrNull(f.Host),
		ID: f.ID, InstanceUUID: stringOrNull(f.InstanceUUID), Interface: f.Interface, Pool: f.Pool,
		ProjectID: stringOrNull(f.ProjectID)}
}

// Model reads the view back.
func (f BulkFloatingIP) Model() model.FloatingIP {
	out := model.FloatingIP{ID: f.ID, Pool: f.Pool, Interface: f.Interface, Host: deref(f.Host),
		FixedAddress: parseAddr(f.FixedIP), InstanceUUID: deref(f.InstanceUUID), ProjectID: deref(f.ProjectID)}
	out.Address, _ = netip.ParseAddr(f.Address)
	return out
}

// BulkCreate echoes the range a bulk create added.
type BulkCreate struct {
	Interface string `json:"interface"`
	IPRange   string `json:"ip_range"`
	Pool      string `json:"pool"`
}

// BulkCreateResult answers POST os-floating-ips-bulk.
type BulkCreateResult struct {
	Info   List[BulkFloatingIP] `json:"floating_ip_info"`
	Create BulkCreate           `json:"floating_ips_bulk_create"`
}

// BulkDeleteResult answers PUT os-floating-ips-bulk/delete.
type BulkDeleteResult struct {
	Deleted int    `json:"deleted"`
	IPRange string `json:"floating_ips_bulk_delete"`
}

// Pool is one os-floating-ip-pools entry.
type Pool struct {
	Name string `json:"name"`
}

// FixedIP is nova's os-fixed-ips view plus novanet's allocated, leased
// and instance_uuid.
type FixedIP struct {
	Address      string  `json:"address"`
	Allocated    bool    `json:"allocated"`
	CIDR         string  `json:"cidr"`
	Host         *string `json:"host"`
	Hostname     *string `json:"hostname"`
	InstanceUUID *string `json:"instance_uuid"`
	Leased       bool    `json:"leased"`
	Reserved     bool    `json:"reserved"`
}

// NewFixedIP is the os-fixed-ips view of f.
func NewFixedIP(f model.FixedIPDetail) FixedIP {
	return FixedIP{Address: f.Address.String(), Allocated: f.Allocated, CIDR: f.CIDR.String(),
		Host: stringOrNull(f.Host), Hostname: stringOrNull(f.Hostname), InstanceUUID: stringOrNull(f.InstanceUUID),
		Leased: f.Leased, Reserved: f.Reserved}
}
