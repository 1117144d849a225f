package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"novanet/internal/model"
)

func (s *Server) nativeRoutes() {
	s.handle("POST /v1/instances", anyUser, s.bootInstance)
	s.handle("GET /v1/instances", anyUser, s.listInstances)
	s.handle("GET /v1/instances/{uuid}", anyUser, s.getInstance)
	s.handle("DELETE /v1/instances/{uuid}", anyUser, s.deleteInstance)
	s.handle("GET /v1/networks", anyUser, s.v1ListNetworks)
	s.handle("POST /v1/networks", adminOnly, s.v1CreateNetworks)
	s.handle("GET /v1/networks/{ref}", anyUser, s.v1GetNetwork)
	s.handle("DELETE /v1/networks/{ref}", adminOnly, s.deleteNetworkRef)
	s.handle("GET /v1/hosts/{host}/state", hostAgent, s.hostState)
	s.handle("GET /v1/hosts/{host}/watch", hostAgent, s.watchHost)
	s.handle("POST /v1/hosts/{host}/applied", hostAgent, s.applied)
	s.handle("GET /v1/hosts/{host}/leases", hostAgent, s.leases)
	s.handle("POST /v1/leases", leaseAgent, s.recordLease)
	s.handle("POST /v1/hosts/{host}/metadata-password", hostAgent, s.setMetadataPassword)
}

func (s *Server) bootInstance(w http.ResponseWriter, r *http.Request) error {
	var req model.BootRequest
	if err := decode(w, r, &req, true); err != nil {
		return err
	}
	if req.UUID != "" {
		if _, err := uuid.Parse(req.UUID); err != nil {
			return invalid("instance uuid %q is not a UUID; leave it empty to have one generated", req.UUID)
		}
	}
	if req.Host == "" {
		return invalid(`"host" is required: the compute host the instance runs on`)
	}
	if len(req.Hostname) > 63 {
		return invalid("hostname %q is longer than 63 characters", req.Hostname)
	}
	if req.FixedAddress.IsValid() && !req.FixedAddress.Is4() {
		return invalid("fixed_address %s is not IPv4", req.FixedAddress)
	}
	p := principal(r)
	if p.Role != RoleAdmin && req.ProjectID != "" && req.ProjectID != p.ProjectID {
		return model.Errorf(model.ErrForbidden, "project token of %q cannot boot in project %q", p.ProjectID, req.ProjectID)
	}
	d, err := s.b.BootInstance(r.Context(), p.Scope(), req)
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

func (s *Server) v1ListNetworks(w http.ResponseWriter, r *http.Request) error {
	nets, err := s.b.ListNetworks(r.Context(), principal(r).Scope())
	if err != nil {
		return err
	}
	if nets == nil {
		nets = []model.Network{}
	}
	writeJSON(w, 200, nets)
	return nil
}

func (s *Server) v1GetNetwork(w http.ResponseWriter, r *http.Request) error {
	n, err := s.b.GetNetwork(r.Context(), principal(r).Scope(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	writeJSON(w, 200, n)
	return nil
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
	if req.FixedRangeV4 == "" {
		return invalid(`"fixed_range_v4" is required (an IPv4 CIDR such as 10.0.0.0/24)`)
	}
	if err := checkCreate(req); err != nil {
		return err
	}
	nets, err := s.b.CreateNetworks(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, nets)
	return nil
}

func (s *Server) hostState(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.b.HostState(r.Context(), r.PathValue("host"))
	if err != nil {
		return err
	}
	writeJSON(w, 200, hs)
	return nil
}

// watchHost is the agents' long poll: it answers as soon as the host's
// revision exceeds ?after, or with the current revision when ?timeout
// (default 30 s, capped) passes or the server shuts down.
func (s *Server) watchHost(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	after, err := strconv.ParseInt(q.Get("after"), 10, 64)
	if q.Get("after") == "" {
		after, err = 0, nil
	}
	if err != nil || after < 0 {
		return invalid("after=%q must be a revision number (0 or more)", q.Get("after"))
	}
	timeout := 30 * time.Second
	if t := q.Get("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil {
			if n, nerr := strconv.Atoi(t); nerr == nil {
				d, err = time.Duration(n)*time.Second, nil
			}
		}
		if err != nil || d < 0 {
			return invalid("timeout=%q must be a duration such as 30s", t)
		}
		timeout = d
	}
	timeout = min(timeout, s.maxWatch)
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	rev, err := s.b.WaitHost(ctx, r.PathValue("host"), after)
	// Our timeout or a shutdown ends the poll normally: the agent asks again.
	if err != nil && ctx.Err() == nil {
		return err
	}
	writeJSON(w, 200, map[string]int64{"revision": rev})
	return nil
}

func (s *Server) applied(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Revision int64  `json:"revision"`
		Problem  string `json:"problem"`
	}
	if err := decode(w, r, &body, true); err != nil {
		return err
	}
	if body.Revision < 0 {
		return invalid("revision must not be negative")
	}
	if err := s.b.ReportApplied(r.Context(), r.PathValue("host"), body.Revision, body.Problem); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) leases(w http.ResponseWriter, r *http.Request) error {
	bridge := r.URL.Query().Get("bridge")
	if bridge == "" {
		return invalid("?bridge= is required: the bridge dnsmasq serves, e.g. br100")
	}
	ls, err := s.b.Leases(r.Context(), r.PathValue("host"), bridge)
	if err != nil {
		return err
	}
	if ls == nil {
		ls = []model.Lease{}
	}
	writeJSON(w, 200, ls)
	return nil
}

func (s *Server) recordLease(w http.ResponseWriter, r *http.Request) error {
	var ev model.LeaseEvent
	if err := decode(w, r, &ev, true); err != nil {
		return err
	}
	p := principal(r)
	if p.Role == RoleAgent && ev.Host != p.Host {
		return model.Errorf(model.ErrForbidden, "the agent of host %q cannot record leases for host %q", p.Host, ev.Host)
	}
	switch ev.Action {
	case model.LeaseAdd, model.LeaseOld, model.LeaseDel:
	default:
		return invalid("lease action %q is unknown; use add, old or del", ev.Action)
	}
	if !ev.Address.Is4() {
		return invalid("lease address must be an IPv4 address")
	}
	if _, err := parseMAC(ev.MAC); err != nil {
		return err
	}
	if ev.Host == "" {
		return invalid(`"host" is required: the agent's host that saw the lease`)
	}
	ev.MAC = strings.ToLower(ev.MAC)
	if err := s.b.RecordLease(r.Context(), ev); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func parseMAC(s string) (string, error) {
	parts := strings.Split(s, ":")
	ok := len(parts) == 6
	for _, p := range parts {
		if len(p) != 2 || strings.Trim(strings.ToLower(p), "0123456789abcdef") != "" {
			ok = false
		}
	}
	if !ok {
		return "", invalid("MAC address %q is malformed; use six colon-separated hex pairs like fa:16:3e:00:00:01", s)
	}
	return strings.ToLower(s), nil
}
