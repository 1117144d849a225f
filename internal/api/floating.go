package api

import (
	"errors"
	"net/http"
	"novanet/internal/model"
	"novanet/internal/wire"
)

// os-floating-ips, os-floating-ip-pools and os-floating-ips-bulk.

func (s *Server) listFloating(w http.ResponseWriter, r *http.Request) error {
	ips, err := s.b.ListFloatingIPs(r.Context(), principal(r).Scope(), false)
	if err != nil {
		return err
	}
	out := make(wire.List[wire.FloatingIP], 0, len(ips))
	for _, f := range ips {
		out = append(out, wire.NewFloatingIP(f))
	}
	writeJSON(w, 200, wire.FloatingIPList{FloatingIPs: out})
	return nil
}

func (s *Server) allocateFloating(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Pool *string `json:"pool"`
	}
	// nova accepts an empty body (default pool).
	if err := decode(w, r, &body, true); err != nil && !errors.Is(err, errEmptyBody) {
		return err
	}
	pool := ""
	if body.Pool != nil {
		pool = *body.Pool
	}
	f, err := s.b.AllocateFloatingIP(r.Context(), principal(r).Scope(), pool)
	if err != nil {
		return err
	}
	writeJSON(w, 200, wire.FloatingIPOne{FloatingIP: wire.NewFloatingIP(f)})
	return nil
}

func (s *Server) getFloating(w http.ResponseWriter, r *http.Request) error {
	f, err := s.b.GetFloatingIP(r.Context(), principal(r).Scope(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, 200, wire.FloatingIPOne{FloatingIP: wire.NewFloatingIP(f)})
	return nil
}

func (s *Server) releaseFloating(w http.ResponseWriter, r *http.Request) error {
	if err := s.b.ReleaseFloatingIP(r.Context(), principal(r).Scope(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Server) listPools(w http.ResponseWriter, r *http.Request) error {
	pools, err := s.b.ListFloatingPools(r.Context())
	if err != nil {
		return err
	}
	out := make(wire.List[wire.Pool], 0, len(pools))
	for _, p := range pools {
		out = append(out, wire.Pool{Name: p})
	}
	writeJSON(w, 200, wire.PoolList{Pools: out})
	return nil
}

func (s *Server) listBulk(w http.ResponseWriter, r *http.Request) error {
	ips, err := s.b.ListFloatingIPs(r.Context(), principal(r).Scope(), true)
	if err != nil {
		return err
	}
	host := r.PathValue("host")
	out := make(wire.List[wire.BulkFloatingIP], 0, len(ips))
	for _, f := range ips {
		if host == "" || f.Host == host {
			out = append(out, wire.NewBulkFloatingIP(f))
		}
	}
	writeJSON(w, 200, wire.BulkFloatingIPList{Info: out})
	return nil
}

func (s *Server) createBulk(w http.ResponseWriter, r *http.Request) error {
	const missing = `missing "floating_ips_bulk_create" object with an "ip_range" (a CIDR or one address)`
	req, err := decodeObject[model.FloatingRangeRequest](w, r, "floating_ips_bulk_create", missing)
	if err != nil {
		return err
	}
	if req.IPRange == "" {
		return invalid(missing)
	}
	ips, err := s.b.CreateFloatingRange(r.Context(), *req)
	if err != nil {
		return err
	}
	out := wire.BulkCreateResult{Info: make(wire.List[wire.BulkFloatingIP], 0, len(ips)),
		Create: wire.BulkCreate{IPRange: req.IPRange, Pool: req.Pool, Interface: req.Interface}}
	for _, f := range ips {
		out.Info = append(out.Info, wire.NewBulkFloatingIP(f))
		out.Create.Pool, out.Create.Interface = f.Pool, f.Interface
	}
	writeJSON(w, 200, out)
	return nil
}

func (s *Server) deleteBulk(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		IPRange string `json:"ip_range"`
	}
	if err := decode(w, r, &body, true); err != nil {
		return err
	}
	if body.IPRange == "" {
		return invalid(`missing "ip_range" (a CIDR or one address)`)
	}
	n, err := s.b.DeleteFloatingRange(r.Context(), body.IPRange)
	if err != nil {
		return err
	}
	writeJSON(w, 200, wire.BulkDeleteResult{IPRange: body.IPRange, Deleted: n})
	return nil
}

// allocateFloatingFor answers POST /v1/floating-ips {"project_id", "pool"}:
// an admin allocates a floating address to a project (counted against
// that project's quota), as nova-manage could and os-floating-ips cannot.
func (s *Server) allocateFloatingFor(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		ProjectID string `json:"project_id"`
		Pool      string `json:"pool"`
	}
	if err := decode(w, r, &body, true); err != nil {
		return err
	}
	if body.ProjectID == "" {
		return invalid(`"project_id" is required: the project that receives the address`)
	}
	f, err := s.b.AllocateFloatingIP(r.Context(), model.Scope{ProjectID: body.ProjectID}, body.Pool)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, f)
	return nil
}
