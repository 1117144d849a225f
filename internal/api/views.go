package api

import (
	"net/http"
	"strconv"

	"novanet/internal/model"
)

// listFixedIPs answers GET /v1/fixed-ips?network=&all=true&leased=true.
func (s *Server) listFixedIPs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	flag := func(name string) (bool, error) {
		v := q.Get(name)
		if v == "" {
			return false, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, invalid("%s=%q must be true or false", name, v)
		}
		return b, nil
	}
	all, err := flag("all")
	if err != nil {
		return err
	}
	leased, err := flag("leased")
	if err != nil {
		return err
	}
	rows, err := s.b.ListFixedIPs(r.Context(), q.Get("network"), all, leased)
	if err != nil {
		return err
	}
	if rows == nil {
		rows = []model.FixedIPRow{}
	}
	writeJSON(w, 200, rows)
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
	if len(body.ProjectID) > 255 {
		return invalid("project_id is longer than 255 characters")
	}
	f, err := s.b.AllocateFloatingIP(r.Context(), model.Scope{ProjectID: body.ProjectID}, body.Pool)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, f)
	return nil
}
