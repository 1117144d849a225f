package api

import (
	"encoding/json"
	"net/http"
	"novanet/internal/wire"
)

// os-fixed-ips.

func (s *Server) getFixed(w http.ResponseWriter, r *http.Request) error {
	a, err := parseAddr(r.PathValue("address"), "fixed address")
	if err != nil {
		return err
	}
	f, err := s.b.GetFixedIP(r.Context(), a)
	if err != nil {
		return err
	}
	writeJSON(w, 200, wire.FixedIPOne{FixedIP: wire.NewFixedIP(f)})
	return nil
}

func (s *Server) fixedAction(w http.ResponseWriter, r *http.Request) error {
	a, err := parseAddr(r.PathValue("address"), "fixed address")
	if err != nil {
		return err
	}
	var body map[string]json.RawMessage
	if err := decode(w, r, &body, false); err != nil {
		return err
	}
	if len(body) != 1 {
		return invalid(`the body must hold exactly one action: {"reserve": null} or {"unreserve": null}`)
	}
	var reserve bool
	switch {
	case body["reserve"] != nil:
		reserve = true
	case body["unreserve"] != nil:
	default:
		return invalid(`unknown fixed IP action; use {"reserve": null} or {"unreserve": null}`)
	}
	if err := s.b.SetFixedIPReserved(r.Context(), a, reserve); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}
