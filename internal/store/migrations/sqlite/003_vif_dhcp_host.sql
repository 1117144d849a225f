-- The host whose dnsmasq serves a VIF's address (the network host, or the
-- instance's host on a multi-host network). A VIF outlives its instance
-- until its address is disassociated, and lease events for it must still
-- come from that host's agent only.
ALTER TABLE virtual_interfaces ADD COLUMN dhcp_host TEXT NOT NULL DEFAULT '';
UPDATE virtual_interfaces SET dhcp_host = COALESCE((SELECT CASE WHEN n.multi_host THEN i.host ELSE n.host END
    FROM networks n LEFT JOIN instances i ON i.uuid = virtual_interfaces.instance_uuid
    WHERE n.id = virtual_interfaces.network_id), '');
