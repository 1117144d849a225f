package api

import (
	"net/http"
)

// setMetadataPassword stores the password a guest posted to its host
// agent's metadata service (the agent has no store to write it to).
func (s *Server) setMetadataPassword(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		InstanceUUID string `json:"instance_uuid"`
		Password     string `json:"password"`
	}
	if err := decode(w, r, &body, true); err != nil {
		return err
	}
	if body.InstanceUUID == "" {
		return invalid("instance_uuid is required")
	}
	if err := s.b.SetHostInstancePassword(r.Context(), r.PathValue("host"), body.InstanceUUID, body.Password); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
