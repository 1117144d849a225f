package api

import (
	"net/http"

	"novanet/internal/model"
	"novanet/internal/version"
)

// Version discovery, as nova answers it: GET / lists the API versions
// (clients pick v2.1 from it) and GET /v2.1/ describes v2.1. Neither needs
// a token. The maximum microversion is 2.35, the last at which nova served
// the nova-network proxies (os-networks, os-floating-ips,
// os-security-groups, ... answer 404 from 2.36 on), so a client that
// negotiates the highest version still reaches the endpoints novanet has.
const (
	maxMicroversion = "2.35"
	minMicroversion = "2.1"
	v21Updated      = "2013-07-23T11:33:21Z"
)

// baseURL is the scheme and host the client reached, for links.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	return scheme + "://" + r.Host
}

func v21Document(r *http.Request) map[string]any {
	return map[string]any{
		"id": "v2.1", "status": "CURRENT", "version": maxMicroversion, "min_version": minMicroversion,
		"updated": v21Updated,
		"links": []any{
			map[string]any{"rel": "self", "href": baseURL(r) + "/v2.1/"},
			map[string]any{"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
		},
		"media-types": []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}},
	}
}

func (s *Server) versions(w http.ResponseWriter, r *http.Request) {
	v21 := v21Document(r)
	delete(v21, "media-types")
	v1 := map[string]any{"id": "v1", "status": "CURRENT", "version": "", "min_version": "",
		"links": []any{map[string]any{"rel": "self", "href": baseURL(r) + "/v1/"}}}
	writeJSON(w, http.StatusMultipleChoices, map[string]any{
		"versions": []any{v21, v1},
		"novanet":  version.Get(),
	})
}

func (s *Server) versionV21(w http.ResponseWriter, r *http.Request) {
	if pid, _ := r.Context().Value(urlProjectKey{}).(string); pid != "" {
		// /v2.1/os-cells/ read as /v2.1/{project_id}/: not the version
		// document but an endpoint novanet does not have.
		writeError(w, s.log, r, model.Errorf(model.ErrNotFound, "no such endpoint %s /v2.1/%s; see docs for the /v2.1 and /v1 paths", r.Method, pid))
		return
	}
	writeJSON(w, 200, map[string]any{"version": v21Document(r)})
}
