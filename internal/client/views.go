package client

import (
	"context"
	"net/http"
	"net/url"

	"novanet/internal/model"
)

// ListFixedIPs lists fixed addresses (admin): network "" = every network;
// all includes the free ones; leased keeps only what dnsmasq leased.
func (c *Client) ListFixedIPs(ctx context.Context, network string, all, leased bool) ([]model.FixedIPRow, error) {
	q := url.Values{}
	if network != "" {
		q.Set("network", network)
	}
	if all {
		q.Set("all", "true")
	}
	if leased {
		q.Set("leased", "true")
	}
	var out []model.FixedIPRow
	err := c.do(ctx, http.MethodGet, "/v1/fixed-ips?"+q.Encode(), nil, &out)
	return out, err
}

// AllocateFloatingIPFor allocates a floating address to a project (admin).
func (c *Client) AllocateFloatingIPFor(ctx context.Context, project, pool string) (model.FloatingIP, error) {
	var out model.FloatingIP
	err := c.do(ctx, http.MethodPost, "/v1/floating-ips", map[string]string{"project_id": project, "pool": pool}, &out)
	return out, err
}
