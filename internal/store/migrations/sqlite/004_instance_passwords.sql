-- The password a guest posts to the metadata service's
-- /openstack/<version>/password (encrypted by the guest with its key),
-- set once per instance; it goes with the instance.
CREATE TABLE instance_passwords (
    instance_uuid TEXT PRIMARY KEY REFERENCES instances(uuid) ON DELETE CASCADE,
    password      TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
