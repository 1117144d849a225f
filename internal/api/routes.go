package api

import "net/http"

// routes is the one table of every endpoint the server answers.
func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /{$}", s.versions)
	s.mux.HandleFunc("GET /v2.1", s.versionV21)
	s.mux.HandleFunc("GET /v2.1/{$}", s.versionV21)
	s.mux.HandleFunc("GET /identity", s.identityVersions)
	s.mux.HandleFunc("GET /identity/{$}", s.identityVersions)
	s.mux.HandleFunc("GET /identity/v3", s.identityV3)
	s.mux.HandleFunc("GET /identity/v3/{$}", s.identityV3)
	s.mux.HandleFunc("POST /identity/v3/auth/tokens", s.identityIssue)
	s.metricsRoutes()
	s.mux.HandleFunc("/", s.noRoute)

	// OpenStack Compute (nova-network) under /v2.1.
	c := "/v2.1"
	s.handle("GET "+c+"/os-networks", anyUser, s.listNetworks)
	s.handle("POST "+c+"/os-networks", adminOnly, s.createNetwork)
	s.handle("GET "+c+"/os-networks/{id}", anyUser, s.getNetwork)
	s.handle("DELETE "+c+"/os-networks/{id}", adminOnly, s.deleteNetwork)
	s.handle("GET "+c+"/os-tenant-networks", anyUser, s.listTenantNetworks)
	s.handle("GET "+c+"/os-tenant-networks/{id}", anyUser, s.getTenantNetwork)

	s.handle("GET "+c+"/os-floating-ips", anyUser, s.listFloating)
	s.handle("POST "+c+"/os-floating-ips", anyUser, s.allocateFloating)
	s.handle("GET "+c+"/os-floating-ips/{id}", anyUser, s.getFloating)
	s.handle("DELETE "+c+"/os-floating-ips/{id}", anyUser, s.releaseFloating)
	s.handle("GET "+c+"/os-floating-ip-pools", anyUser, s.listPools)
	s.handle("GET "+c+"/os-floating-ips-bulk", adminOnly, s.listBulk)
	s.handle("GET "+c+"/os-floating-ips-bulk/{host}", adminOnly, s.listBulk)
	s.handle("POST "+c+"/os-floating-ips-bulk", adminOnly, s.createBulk)
	s.handle("PUT "+c+"/os-floating-ips-bulk/delete", adminOnly, s.deleteBulk)

	s.handle("GET "+c+"/os-fixed-ips/{address}", adminOnly, s.getFixed)
	s.handle("POST "+c+"/os-fixed-ips/{address}/action", adminOnly, s.fixedAction)

	s.handle("GET "+c+"/os-security-groups", anyUser, s.listGroups)
	s.handle("POST "+c+"/os-security-groups", anyUser, s.createGroup)
	s.handle("GET "+c+"/os-security-groups/{id}", anyUser, s.getGroup)
	s.handle("PUT "+c+"/os-security-groups/{id}", anyUser, s.updateGroup)
	s.handle("DELETE "+c+"/os-security-groups/{id}", anyUser, s.deleteGroup)
	s.handle("POST "+c+"/os-security-group-rules", anyUser, s.createRule)
	s.handle("DELETE "+c+"/os-security-group-rules/{id}", anyUser, s.deleteRule)
	s.handle("GET "+c+"/os-security-group-default-rules", adminOnly, s.listDefaultRules)
	s.handle("POST "+c+"/os-security-group-default-rules", adminOnly, s.createDefaultRule)
	s.handle("GET "+c+"/os-security-group-default-rules/{id}", adminOnly, s.getDefaultRule)
	s.handle("DELETE "+c+"/os-security-group-default-rules/{id}", adminOnly, s.deleteDefaultRule)

	s.handle("POST "+c+"/servers/{id}/action", anyUser, s.serverAction)
	s.handle("GET "+c+"/servers/{id}/os-security-groups", anyUser, s.serverGroups)

	// novanet's native API under /v1.
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
	s.handle("GET /v1/hosts", adminOnly, s.listHosts)
	s.handle("GET /v1/fixed-ips", adminOnly, s.listFixedIPs)
	s.handle("POST /v1/floating-ips", adminOnly, s.allocateFloatingFor)
	s.handle("POST /v1/hosts/{host}/metadata-password", hostAgent, s.setMetadataPassword)
}
