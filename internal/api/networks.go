package api

import (
	"fmt"
	"net/http"
	"novanet/internal/model"
	"novanet/internal/wire"
)

// os-networks and os-tenant-networks (/v2.1), and /v1/networks.

// networkViewFor is the os-networks view of n for p: a project's token
// sees only the fields nova showed a project.
func networkViewFor(p Principal, n model.Network) any {
	if p.Role == RoleAdmin {
		return wire.NewNetwork(n)
	}
	return wire.NewProjectNetwork(n)
}

func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request) error {
	nets, err := s.b.ListNetworks(r.Context(), principal(r).Scope())
	if err != nil {
		return err
	}
	out := make(wire.List[any], 0, len(nets))
	for _, n := range nets {
		out = append(out, networkViewFor(principal(r), n))
	}
	writeJSON(w, 200, wire.NetworkList[any]{Networks: out})
	return nil
}

func (s *Server) getNetwork(w http.ResponseWriter, r *http.Request) error {
	n, err := s.b.GetNetwork(r.Context(), principal(r).Scope(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, 200, wire.NetworkOne[any]{Network: networkViewFor(principal(r), n)})
	return nil
}

func (s *Server) deleteNetwork(w http.ResponseWriter, r *http.Request) error {
	if err := s.b.DeleteNetwork(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// novaNetworkCreate is nova's os-networks create body plus novanet's
// kind, host, num_networks and network_size.
type novaNetworkCreate struct {
	Label           string  `json:"label"`
	CIDR            string  `json:"cidr"`
	CIDRv6          string  `json:"cidr_v6"`
	Bridge          string  `json:"bridge"`
	BridgeInterface string  `json:"bridge_interface"`
	MultiHost       *bool   `json:"multi_host"`
	DNS1            string  `json:"dns1"`
	DNS2            string  `json:"dns2"`
	Gateway         string  `json:"gateway"`
	DHCPStart       string  `json:"dhcp_start"`
	VLAN            flexInt `json:"vlan"`
	VLANStart       flexInt `json:"vlan_start"`
	ProjectID       string  `json:"project_id"`
	NumNetworks     flexInt `json:"num_networks"`
	NetworkSize     flexInt `json:"network_size"`
	Kind            string  `json:"kind"`
	Host            string  `json:"host"`
	MTU             flexInt `json:"mtu"`
}

func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request) error {
	n, err := decodeObject[novaNetworkCreate](w, r, "network", `missing "network" object in the request body`)
	if err != nil {
		return err
	}
	if n.CIDRv6 != "" {
		return invalid("cidr_v6 is not supported: novanet networks are IPv4 only")
	}
	if n.CIDR == "" {
		return invalid(`"cidr" is required (an IPv4 CIDR such as 10.0.0.0/24)`)
	}
	req := model.NetworkCreateRequest{
		Label: n.Label, Kind: model.ManagerKind(n.Kind), FixedRangeV4: n.CIDR,
		NumNetworks: int(n.NumNetworks.v), NetworkSize: int(n.NetworkSize.v),
		Bridge: n.Bridge, BridgeInterface: n.BridgeInterface, MultiHost: n.MultiHost,
		DNS1: n.DNS1, DNS2: n.DNS2, Gateway: n.Gateway, DHCPStart: n.DHCPStart,
		VLAN: int(n.VLAN.v), ProjectID: n.ProjectID, Host: n.Host, MTU: int(n.MTU.v),
	}
	if req.VLAN == 0 {
		req.VLAN = int(n.VLANStart.v)
	}
	nets, err := s.b.CreateNetworks(r.Context(), req)
	if err != nil {
		return err
	}
	if len(nets) == 0 {
		return fmt.Errorf("create network %q: backend created no network", req.Label)
	}
	writeJSON(w, 200, wire.NetworkOne[wire.Network]{Network: wire.NewNetwork(nets[0])})
	return nil
}

func (s *Server) listTenantNetworks(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	scope := p.Scope()
	// os-tenant-networks is the project's view even for admins.
	scope.Admin = false
	nets, err := s.b.ListNetworks(r.Context(), scope)
	if err != nil {
		return err
	}
	out := make(wire.List[wire.TenantNetwork], 0, len(nets))
	for _, n := range nets {
		out = append(out, wire.NewTenantNetwork(n))
	}
	writeJSON(w, 200, wire.NetworkList[wire.TenantNetwork]{Networks: out})
	return nil
}

func (s *Server) getTenantNetwork(w http.ResponseWriter, r *http.Request) error {
	n, err := s.b.GetNetwork(r.Context(), principal(r).Scope(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, 200, wire.NetworkOne[wire.TenantNetwork]{Network: wire.NewTenantNetwork(n)})
	return nil
}

func (s *Server) v1ListNetworks(w http.ResponseWriter, r *http.Request) error {
	nets, err := s.b.ListNetworks(r.Context(), principal(r).Scope())
	if err != nil {
		return err
	}
	if nets == nil {
		nets = []model.Network{}
	}
	for i := range nets {
		nets[i] = projectNetwork(principal(r), nets[i])
	}
	writeJSON(w, 200, nets)
	return nil
}

func (s *Server) v1GetNetwork(w http.ResponseWriter, r *http.Request) error {
	n, err := s.b.GetNetwork(r.Context(), principal(r).Scope(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	writeJSON(w, 200, projectNetwork(principal(r), n))
	return nil
}

// projectNetwork clears, for a project's token, the fields os-networks
// shows only to admins (networkUserFields): which host serves the
// network, its bridge, vlan and DHCP range are the datapath's business.
func projectNetwork(p Principal, n model.Network) model.Network {
	if p.Role == RoleAdmin {
		return n
	}
	return model.Network{ID: n.ID, UUID: n.UUID, Label: n.Label, Kind: n.Kind, CIDR: n.CIDR,
		Gateway: n.Gateway, Broadcast: n.Broadcast, DNS1: n.DNS1, DNS2: n.DNS2, CreatedAt: n.CreatedAt}
}

func (s *Server) deleteNetworkRef(w http.ResponseWriter, r *http.Request) error {
	if err := s.b.DeleteNetwork(r.Context(), r.PathValue("ref")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) v1CreateNetworks(w http.ResponseWriter, r *http.Request) error {
	var req model.NetworkCreateRequest
	if err := decode(w, r, &req, true); err != nil {
		return err
	}
	nets, err := s.b.CreateNetworks(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, nets)
	return nil
}
