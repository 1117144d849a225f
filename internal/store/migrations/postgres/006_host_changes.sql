-- What changed in each host's state at each revision (the scopes the
-- manager recorded in the transaction that bumped it), so that the
-- server can answer "what changed since revision R" by re-reading only
-- the touched items. Written in the same transaction as the revision
-- bump; old rows are pruned by the periodic task.
CREATE TABLE host_changes (
    host     TEXT NOT NULL,
    revision BIGINT NOT NULL,
    scope    TEXT NOT NULL,
    PRIMARY KEY (host, revision, scope)
);
