package client

import (
	"context"
	"net/http"
	"net/url"
)

// SetMetadataPassword stores the password a guest on host posted to its
// agent's metadata service.
func (c *Client) SetMetadataPassword(ctx context.Context, host, instanceUUID, password string) error {
	in := struct {
		InstanceUUID string `json:"instance_uuid"`
		Password     string `json:"password"`
	}{instanceUUID, password}
	return c.do(ctx, http.MethodPost, "/v1/hosts/"+url.PathEscape(host)+"/metadata-password", in, nil)
}
