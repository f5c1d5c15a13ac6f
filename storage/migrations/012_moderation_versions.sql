-- 012: each server's moderation version (issue 13). Every create checks, under the write
-- lock, that the settings and blocklist it screened against are still the stored ones; a
-- version moved by every change lets it read one small row instead of both, while any
-- process (or an owner's sqlite3 shell) that changes either still moves it: triggers.
CREATE TABLE moderation_versions (
    guild_id    INTEGER PRIMARY KEY,
    version     INTEGER NOT NULL
);
CREATE TRIGGER moderation_settings_insert_version AFTER INSERT ON moderation_settings
BEGIN
    INSERT INTO moderation_versions (guild_id, version) VALUES (NEW.guild_id, 1)
    ON CONFLICT (guild_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER moderation_settings_update_version AFTER UPDATE ON moderation_settings
BEGIN
    INSERT INTO moderation_versions (guild_id, version) VALUES (NEW.guild_id, 1)
    ON CONFLICT (guild_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER moderation_settings_delete_version AFTER DELETE ON moderation_settings
BEGIN
    INSERT INTO moderation_versions (guild_id, version) VALUES (OLD.guild_id, 1)
    ON CONFLICT (guild_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER blocklist_insert_version AFTER INSERT ON blocklist
BEGIN
    INSERT INTO moderation_versions (guild_id, version) VALUES (NEW.guild_id, 1)
    ON CONFLICT (guild_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER blocklist_update_version AFTER UPDATE ON blocklist
BEGIN
    INSERT INTO moderation_versions (guild_id, version) VALUES (NEW.guild_id, 1)
    ON CONFLICT (guild_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER blocklist_delete_version AFTER DELETE ON blocklist
BEGIN
    INSERT INTO moderation_versions (guild_id, version) VALUES (OLD.guild_id, 1)
    ON CONFLICT (guild_id) DO UPDATE SET version = version + 1;
END;
