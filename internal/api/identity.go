package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// A minimal Keystone v3 identity endpoint, so the standard clients
// (openstack CLI, openstacksdk, gophercloud with an auth URL) work on
// sites without Keystone:
//
//	GET  /identity, /identity/v3          version discovery
//	POST /identity/v3/auth/tokens         password or token auth
//
// There are no users: the credential is a token of the tokens file.
//
//   - token auth ({"methods": ["token"], "token": {"id": T}}): T is a
//     token of the tokens file;
//   - password auth: the password is a token of the tokens file; the
//     user name is only echoed back (it names who is at the keyboard in
//     the client's output), and any user domain is accepted.
//
// The scope's project (by name or id; novanet's projects have one name,
// their id) must be the token's project, or be absent (the token's
// project is used). Agent tokens are refused: agents talk to /v1 with
// their token directly. The answer's X-Subject-Token is the tokens-file
// token itself, valid as X-Auth-Token on /v2.1 and /v1 as long as the
// file holds it; expires_at is a nominal day ahead so clients re-ask
// rather than cache forever. The catalog lists compute alone, at this
// server's /v2.1, so clients take their nova-network code paths
// (os-networks, os-floating-ips, os-security-groups) instead of
// looking for neutron.

// identityTokenLifetime is the nominal expiry announced for a token.
const identityTokenLifetime = 24 * time.Hour

func identityV3Document(r *http.Request) map[string]any {
	return map[string]any{
		"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
		"links":       []any{map[string]any{"rel": "self", "href": baseURL(r) + "/identity/v3/"}},
		"media-types": []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}},
	}
}

func (s *Server) identityVersions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusMultipleChoices, map[string]any{"versions": map[string]any{"values": []any{identityV3Document(r)}}})
}

func (s *Server) identityV3(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, map[string]any{"version": identityV3Document(r)})
}

// identityError writes Keystone's error shape.
func identityError(w http.ResponseWriter, code int, title, msg string) {
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Keystone uri="none"`)
	}
	writeJSON(w, code, map[string]any{"error": map[string]any{"code": code, "title": title, "message": msg}})
}

type identityRequest struct {
	Auth struct {
		Identity struct {
			Methods  []string `json:"methods"`
			Password struct {
				User struct {
					ID       string `json:"id"`
					Name     string `json:"name"`
					Password string `json:"password"`
				} `json:"user"`
			} `json:"password"`
			Token struct {
				ID string `json:"id"`
			} `json:"token"`
		} `json:"identity"`
		Scope json.RawMessage `json:"scope"`
	} `json:"auth"`
}

type identityScope struct {
	Project *struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"project"`
	Domain *struct{} `json:"domain"`
	System *struct{} `json:"system"`
}

func (s *Server) identityIssue(w http.ResponseWriter, r *http.Request) {
	var req identityRequest
	if err := decode(w, r, &req, false); err != nil {
		identityError(w, 400, "Bad Request", err.Error())
		return
	}
	id := req.Auth.Identity
	var token, method, user string
	switch {
	case len(id.Methods) == 1 && id.Methods[0] == "password":
		token, method = id.Password.User.Password, "password"
		user = id.Password.User.Name
		if user == "" {
			user = id.Password.User.ID
		}
	case len(id.Methods) == 1 && id.Methods[0] == "token":
		token, method = id.Token.ID, "token"
	default:
		identityError(w, 400, "Bad Request", `auth.identity.methods must be ["password"] or ["token"]; the password is a token of serve's tokens file`)
		return
	}
	p, ok := s.tokens.Lookup(token)
	if !ok {
		what := "the password is not a token of serve's tokens file"
		if method == "token" {
			what = "the token is not in serve's tokens file"
		}
		identityError(w, 401, "Unauthorized", what+"; novanet's identity endpoint has no users of its own (see OPERATIONS.md)")
		return
	}
	if p.Role == RoleAgent {
		identityError(w, 403, "Forbidden", "agent tokens do not authenticate here; agents use /v1 with their token")
		return
	}
	var scope identityScope
	if len(req.Auth.Scope) > 0 && string(req.Auth.Scope) != "null" && string(req.Auth.Scope) != `"unscoped"` {
		if err := json.Unmarshal(req.Auth.Scope, &scope); err != nil {
			identityError(w, 400, "Bad Request", "auth.scope: "+jsonProblem(err))
			return
		}
		if scope.Project == nil {
			identityError(w, 400, "Bad Request", "only project scope is offered (novanet has no domains or system scope); set --os-project-name")
			return
		}
		if scope.Project.ID != p.ProjectID && scope.Project.Name != p.ProjectID {
			name := scope.Project.Name
			if name == "" {
				name = scope.Project.ID
			}
			identityError(w, 401, "Unauthorized", "this token belongs to project "+p.ProjectID+", not "+name+"; scope to "+p.ProjectID)
			return
		}
	}
	if user == "" {
		user = p.String()
	}
	s.writeIdentityToken(w, r, token, method, user, p)
}

func (s *Server) writeIdentityToken(w http.ResponseWriter, r *http.Request, token, method, user string, p Principal) {
	now := time.Now().UTC()
	roles := []any{map[string]any{"id": "member", "name": "member"}, map[string]any{"id": "reader", "name": "reader"}}
	if p.Role == RoleAdmin {
		roles = append([]any{map[string]any{"id": "admin", "name": "admin"}}, roles...)
	}
	domain := map[string]any{"id": "default", "name": "Default"}
	compute := baseURL(r) + "/v2.1"
	endpoints := []any{}
	for _, iface := range []string{"public", "internal", "admin"} {
		endpoints = append(endpoints, map[string]any{"id": "compute-" + iface, "interface": iface,
			"region": "RegionOne", "region_id": "RegionOne", "url": compute})
	}
	// A stable user id per name, as Keystone's are opaque ids.
	uid := sha256.Sum256([]byte(user))
	body := map[string]any{"token": map[string]any{
		"methods":    []string{method},
		"user":       map[string]any{"id": hex.EncodeToString(uid[:16]), "name": user, "domain": domain, "password_expires_at": nil},
		"project":    map[string]any{"id": p.ProjectID, "name": p.ProjectID, "domain": domain},
		"roles":      roles,
		"is_domain":  false,
		"issued_at":  now.Format("2006-01-02T15:04:05.000000Z"),
		"expires_at": now.Add(identityTokenLifetime).Format("2006-01-02T15:04:05.000000Z"),
		"audit_ids":  []string{strings.ToLower(hex.EncodeToString(uid[16:22]))},
		"catalog": []any{map[string]any{
			"id": "compute", "type": "compute", "name": "nova", "endpoints": endpoints,
		}},
	}}
	w.Header().Set("X-Subject-Token", token)
	writeJSON(w, http.StatusCreated, body)
}
