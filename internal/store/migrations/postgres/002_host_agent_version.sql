-- The novanet version each agent last reported (`novanet host list`).
ALTER TABLE hosts ADD COLUMN agent_version TEXT NOT NULL DEFAULT '';
