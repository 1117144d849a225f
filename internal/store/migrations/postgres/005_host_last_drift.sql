-- The last drift each host's agent repaired (what differed, what it did,
-- how long it took), for `novanet host list`.
ALTER TABLE hosts ADD COLUMN last_drift TEXT NOT NULL DEFAULT '';
