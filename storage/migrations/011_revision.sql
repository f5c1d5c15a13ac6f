-- 011: a job's revision (issue 13). Every write of a job's row moves it by one, its lease's
-- too. A transition guarded by the revision it read knows the row is that job plus its own
-- change, so it hands the job back without having SQLite return the whole row.
ALTER TABLE jobs ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
-- The bot's own statements move it themselves (cheaper); this moves it for any other write
-- (a test's, an owner's sqlite3 shell), so a job read earlier is never taken for the row.
CREATE TRIGGER jobs_revision AFTER UPDATE ON jobs WHEN NEW.revision = OLD.revision
BEGIN UPDATE jobs SET revision = OLD.revision + 1 WHERE id = NEW.id; END;
