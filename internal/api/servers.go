package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/netip"
	"novanet/internal/model"
	"strconv"
)

// servers/{id}/action (/v2.1) and /v1/instances.

func (s *Server) serverAction(w http.ResponseWriter, r *http.Request) error {
	uuid := r.PathValue("id")
	var body map[string]json.RawMessage
	if err := decode(w, r, &body, false); err != nil {
		return err
	}
	if len(body) != 1 {
		return invalid("the body must hold exactly one action: addFloatingIp, removeFloatingIp, addSecurityGroup or removeSecurityGroup")
	}
	scope := principal(r).Scope()
	for action, raw := range body {
		switch action {
		case "addFloatingIp", "removeFloatingIp":
			var a struct {
				Address      string `json:"address"`
				FixedAddress string `json:"fixed_address"`
			}
			if err := strictInto(raw, &a, action); err != nil {
				return err
			}
			floating, err := parseAddr(a.Address, "floating address")
			if err != nil {
				return err
			}
			if action == "removeFloatingIp" {
				if a.FixedAddress != "" {
					return invalid("removeFloatingIp takes only an address")
				}
				err = s.b.DisassociateFloatingIP(r.Context(), scope, floating, uuid)
			} else {
				var fixed netip.Addr
				if a.FixedAddress != "" {
					if fixed, err = parseAddr(a.FixedAddress, "fixed_address"); err != nil {
						return err
					}
				}
				err = s.b.AssociateFloatingIP(r.Context(), scope, floating, uuid, fixed)
			}
			if err != nil {
				return err
			}
		case "addSecurityGroup", "removeSecurityGroup":
			var a struct {
				Name string `json:"name"`
			}
			if err := strictInto(raw, &a, action); err != nil {
				return err
			}
			if a.Name == "" {
				return invalid("%s needs a group name", action)
			}
			var err error
			if action == "addSecurityGroup" {
				err = s.b.AddInstanceSecurityGroup(r.Context(), scope, uuid, a.Name)
			} else {
				err = s.b.RemoveInstanceSecurityGroup(r.Context(), scope, uuid, a.Name)
			}
			if err != nil {
				return err
			}
		default:
			return invalid("server action %q is not handled by novanet; it handles addFloatingIp, removeFloatingIp, addSecurityGroup and removeSecurityGroup", action)
		}
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func strictInto(raw json.RawMessage, v any, what string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("malformed %s: %s", what, jsonProblem(err))
	}
	if err := checkNoNUL(v); err != nil {
		return invalid("%s: %v", what, err)
	}
	return nil
}

func (s *Server) bootInstance(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		model.BootRequest
		FixedAddress addrField `json:"fixed_address"` // named in its error
	}
	if err := decode(w, r, &body, true); err != nil {
		return err
	}
	req := body.BootRequest
	var err error
	if req.FixedAddress, err = body.FixedAddress.addr("fixed_address"); err != nil {
		return err
	}
	d, err := s.b.BootInstance(r.Context(), principal(r).Scope(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, d)
	return nil
}

// MaxListLimit caps one page of /v1/instances (nova's osapi_max_limit):
// a list of 60,000 instances in one answer would hold all of them in the
// server's memory at once.
const MaxListLimit = 1000

func (s *Server) listInstances(w http.ResponseWriter, r *http.Request) error {
	limit := MaxListLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return invalid("limit=%q must be a positive integer (at most %d)", v, MaxListLimit)
		}
		limit = min(n, MaxListLimit)
	}
	out, err := s.b.ListInstances(r.Context(), principal(r).Scope(), r.URL.Query().Get("marker"), limit)
	if err != nil {
		return err
	}
	if out == nil {
		out = []model.InstanceDetail{}
	}
	writeJSON(w, 200, out)
	return nil
}

func (s *Server) getInstance(w http.ResponseWriter, r *http.Request) error {
	d, err := s.b.GetInstance(r.Context(), principal(r).Scope(), r.PathValue("uuid"))
	if err != nil {
		return err
	}
	writeJSON(w, 200, d)
	return nil
}

func (s *Server) deleteInstance(w http.ResponseWriter, r *http.Request) error {
	if err := s.b.DeleteInstance(r.Context(), principal(r).Scope(), r.PathValue("uuid")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
