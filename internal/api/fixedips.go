package api

import (
	"encoding/json"
	"net/http"
	"novanet/internal/model"
	"novanet/internal/wire"
	"strconv"
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
