package api

import "net/http"

// listHosts answers GET /v1/hosts: every agent's host, roles, applied
// revision, last report, version and last problem.
func (s *Server) listHosts(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.b.ListHosts(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, 200, hs)
	return nil
}
