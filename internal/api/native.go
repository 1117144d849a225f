package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"novanet/internal/model"
)

func (s *Server) hostState(w http.ResponseWriter, r *http.Request) error {
	if _, err := hostProtocol(w, r); err != nil {
		return err
	}
	hs, err := s.b.HostState(r.Context(), r.PathValue("host"))
	if err != nil {
		return err
	}
	writeJSON(w, 200, hs)
	return nil
}

// watchHost is the agents' long poll: it answers as soon as the host's
// revision exceeds ?after, or with the current revision when ?timeout
// (default 30 s, capped) passes or the server shuts down. An agent that
// names the host state protocol (model.HostStateProtocol) gets, beside
// the revision, what changed since ?after ("delta"; the whole state in
// it when the server cannot say), so it fetches nothing more.
func (s *Server) watchHost(w http.ResponseWriter, r *http.Request) error {
	versioned, err := hostProtocol(w, r)
	if err != nil {
		return err
	}
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
	if versioned {
		d, err := s.b.WatchHost(ctx, r.PathValue("host"), after)
		if err != nil && ctx.Err() == nil {
			return err
		}
		writeJSON(w, 200, watchAnswer{Revision: d.To, Delta: &d})
		return nil
	}
	rev, err := s.b.WaitHost(ctx, r.PathValue("host"), after)
	// Our timeout or a shutdown ends the poll normally: the agent asks again.
	if err != nil && ctx.Err() == nil {
		return err
	}
	writeJSON(w, 200, map[string]int64{"revision": rev})
	return nil
}

func (s *Server) applied(w http.ResponseWriter, r *http.Request) error {
	if _, err := hostProtocol(w, r); err != nil {
		return err
	}
	var body struct {
		model.AppliedReport
		Version string `json:"version"` // the agent's novanet version
	}
	if err := decode(w, r, &body, true); err != nil {
		return err
	}
	if err := s.b.ReportApplied(r.Context(), r.PathValue("host"), body.AppliedReport); err != nil {
		return err
	}
	if body.Version != "" {
		if err := s.b.ReportAgentVersion(r.Context(), r.PathValue("host"), body.Version); err != nil {
			return err
		}
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
	var body struct {
		model.LeaseEvent
		Address addrField `json:"address"` // named in its error
	}
	if err := decode(w, r, &body, true); err != nil {
		return err
	}
	ev := body.LeaseEvent
	var err error
	if ev.Address, err = body.Address.addr("address"); err != nil {
		return err
	}
	// The agent's token names its host; the manager then checks that
	// this host serves the address.
	p := principal(r)
	if p.Role == RoleAgent && ev.Host != p.Host {
		return model.Errorf(model.ErrForbidden, "the agent of host %q cannot record leases for host %q", p.Host, ev.Host)
	}
	if err := s.b.RecordLease(r.Context(), ev); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// watchAnswer is the body of GET /v1/hosts/{host}/watch.
type watchAnswer struct {
	Revision int64                 `json:"revision"`
	Delta    *model.HostStateDelta `json:"delta,omitempty"`
}

// hostProtocol checks the protocol an agent names and answers with the
// server's. An agent naming none predates the versioned protocol and is
// served as before (revisions only on the watch, the state unchanged).
func hostProtocol(w http.ResponseWriter, r *http.Request) (versioned bool, err error) {
	w.Header().Set(model.HostProtocolHeader, strconv.Itoa(model.HostStateProtocol))
	v := r.Header.Get(model.HostProtocolHeader)
	if v == "" {
		return false, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n != model.HostStateProtocol {
		return false, model.Errorf(model.ErrConflict, "this agent speaks host state protocol %s, this server speaks %d: upgrade the older side (the agent when its number is lower, the server otherwise) so both speak the same", v, model.HostStateProtocol)
	}
	return true, nil
}
