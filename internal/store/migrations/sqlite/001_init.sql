-- novanet schema, SQLite dialect. Timestamps are unix microseconds (UTC)
-- so both engines compare and dump them the same way.
CREATE TABLE networks (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid                TEXT NOT NULL UNIQUE,
    label               TEXT NOT NULL UNIQUE,
    kind                TEXT NOT NULL,
    cidr                TEXT NOT NULL UNIQUE,
    netmask             TEXT NOT NULL,
    gateway             TEXT NOT NULL,
    broadcast           TEXT NOT NULL,
    dhcp_start          TEXT NOT NULL,
    dns1                TEXT NOT NULL DEFAULT '',
    dns2                TEXT NOT NULL DEFAULT '',
    bridge              TEXT NOT NULL DEFAULT '',
    bridge_interface    TEXT NOT NULL DEFAULT '',
    vlan                INTEGER NOT NULL DEFAULT 0,
    vpn_public_address  TEXT NOT NULL DEFAULT '',
    vpn_public_port     INTEGER NOT NULL DEFAULT 0,
    vpn_private_address TEXT NOT NULL DEFAULT '',
    multi_host          BOOLEAN NOT NULL DEFAULT FALSE,
    project_id          TEXT NOT NULL DEFAULT '',
    host                TEXT NOT NULL DEFAULT '',
    mtu                 INTEGER NOT NULL DEFAULT 0,
    created_at          BIGINT NOT NULL
);
CREATE UNIQUE INDEX networks_vlan ON networks(vlan) WHERE vlan <> 0;

CREATE TABLE instances (
    uuid       TEXT PRIMARY KEY,
    hostname   TEXT NOT NULL,
    project_id TEXT NOT NULL,
    host       TEXT NOT NULL,
    user_data  TEXT NOT NULL DEFAULT '',
    key_name   TEXT NOT NULL DEFAULT '',
    key_data   TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);
CREATE INDEX instances_host ON instances(host);
CREATE INDEX instances_project ON instances(project_id);

-- A VIF outlives its instance until its fixed IP is disassociated, so that
-- the MAC of a lingering lease is not handed out again; hence no foreign
-- key to instances.
CREATE TABLE virtual_interfaces (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid          TEXT NOT NULL UNIQUE,
    mac           TEXT NOT NULL UNIQUE,
    instance_uuid TEXT NOT NULL,
    network_id    BIGINT NOT NULL REFERENCES networks(id),
    device        TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX virtual_interfaces_instance ON virtual_interfaces(instance_uuid);

CREATE TABLE fixed_ips (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    address              TEXT NOT NULL UNIQUE,
    network_id           BIGINT NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
    instance_uuid        TEXT,
    virtual_interface_id BIGINT,
    host                 TEXT,
    allocated            BOOLEAN NOT NULL DEFAULT FALSE,
    leased               BOOLEAN NOT NULL DEFAULT FALSE,
    reserved             BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at           BIGINT NOT NULL DEFAULT 0
);
-- The free pool: allocation reads the first entry, so its cost does not
-- grow with the number of allocated rows.
CREATE INDEX fixed_ips_free ON fixed_ips(network_id, id)
    WHERE NOT allocated AND NOT reserved AND instance_uuid IS NULL AND host IS NULL AND NOT leased;
CREATE INDEX fixed_ips_instance ON fixed_ips(instance_uuid) WHERE instance_uuid IS NOT NULL;
CREATE UNIQUE INDEX fixed_ips_vif ON fixed_ips(virtual_interface_id) WHERE virtual_interface_id IS NOT NULL;
-- One gateway address per host and multi-host network.
CREATE UNIQUE INDEX fixed_ips_host ON fixed_ips(network_id, host) WHERE host IS NOT NULL;
CREATE INDEX fixed_ips_stale ON fixed_ips(updated_at) WHERE NOT allocated AND instance_uuid IS NOT NULL;

CREATE TABLE security_groups (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    UNIQUE (project_id, name)
);

CREATE TABLE security_group_rules (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id        BIGINT NOT NULL REFERENCES security_groups(id) ON DELETE CASCADE,
    protocol        TEXT NOT NULL DEFAULT '',
    from_port       INTEGER NOT NULL DEFAULT -1,
    to_port         INTEGER NOT NULL DEFAULT -1,
    cidr            TEXT NOT NULL DEFAULT '',
    source_group_id BIGINT REFERENCES security_groups(id) ON DELETE CASCADE
);
CREATE INDEX security_group_rules_group ON security_group_rules(group_id);

CREATE TABLE default_security_group_rules (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    protocol  TEXT NOT NULL DEFAULT '',
    from_port INTEGER NOT NULL DEFAULT -1,
    to_port   INTEGER NOT NULL DEFAULT -1,
    cidr      TEXT NOT NULL DEFAULT ''
);

CREATE TABLE instance_security_groups (
    instance_uuid TEXT NOT NULL REFERENCES instances(uuid) ON DELETE CASCADE,
    group_id      BIGINT NOT NULL REFERENCES security_groups(id),
    PRIMARY KEY (instance_uuid, group_id)
);
CREATE INDEX instance_security_groups_group ON instance_security_groups(group_id);

CREATE TABLE floating_ips (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    address       TEXT NOT NULL UNIQUE,
    ipnum         BIGINT NOT NULL UNIQUE,
    pool          TEXT NOT NULL,
    interface     TEXT NOT NULL DEFAULT '',
    project_id    TEXT,
    fixed_ip_id   BIGINT REFERENCES fixed_ips(id),
    host          TEXT,
    auto_assigned BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX floating_ips_free ON floating_ips(pool, id) WHERE project_id IS NULL;
CREATE INDEX floating_ips_project ON floating_ips(project_id) WHERE project_id IS NOT NULL;
CREATE INDEX floating_ips_fixed ON floating_ips(fixed_ip_id) WHERE fixed_ip_id IS NOT NULL;

-- Leases a host's dnsmasq must release (force_dhcp_release).
CREATE TABLE dhcp_releases (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    host       TEXT NOT NULL,
    network_id BIGINT NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
    address    TEXT NOT NULL,
    mac        TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX dhcp_releases_host ON dhcp_releases(host);

CREATE TABLE hosts (
    name             TEXT PRIMARY KEY,
    revision         BIGINT NOT NULL DEFAULT 0,
    applied_revision BIGINT NOT NULL DEFAULT 0,
    problem          TEXT NOT NULL DEFAULT '',
    last_seen        BIGINT NOT NULL DEFAULT 0
);

-- Per-project overrides of the quota options (none means the option).
CREATE TABLE quotas (
    project_id TEXT NOT NULL,
    resource   TEXT NOT NULL,
    hard_limit INTEGER NOT NULL,
    PRIMARY KEY (project_id, resource)
);
