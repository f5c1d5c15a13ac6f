-- 004 (SQLite 011): a job's revision. Every write of a job's row moves it by one, its
-- lease's too. A transition guarded by the revision it read knows the row is that job plus
-- its own change, so it hands the job back without returning the whole row.
ALTER TABLE jobs ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
-- The bot's own statements move it themselves; this moves it for any other write (a
-- test's, an owner's psql), so a job read earlier is never taken for the row.
CREATE FUNCTION jobs_move_revision() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.revision = OLD.revision THEN
        NEW.revision := OLD.revision + 1;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER jobs_revision BEFORE UPDATE ON jobs
FOR EACH ROW EXECUTE FUNCTION jobs_move_revision();
