-- 005 (SQLite 012): each server's moderation version, moved by every change of its
-- settings or blocklist (a trigger, whoever writes), so a create checks one small row.
CREATE TABLE moderation_versions (
    guild_id    BIGINT PRIMARY KEY,
    version     BIGINT NOT NULL
);
CREATE FUNCTION move_moderation_version() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    guild BIGINT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        guild := OLD.guild_id;
    ELSE
        guild := NEW.guild_id;
    END IF;
    INSERT INTO moderation_versions (guild_id, version) VALUES (guild, 1)
    ON CONFLICT (guild_id) DO UPDATE SET version = moderation_versions.version + 1;
    RETURN NULL;
END;
$$;
CREATE TRIGGER moderation_settings_version AFTER INSERT OR UPDATE OR DELETE
ON moderation_settings FOR EACH ROW EXECUTE FUNCTION move_moderation_version();
CREATE TRIGGER blocklist_version AFTER INSERT OR UPDATE OR DELETE
ON blocklist FOR EACH ROW EXECUTE FUNCTION move_moderation_version();
