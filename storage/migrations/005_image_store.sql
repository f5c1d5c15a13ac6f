-- 005: images stored once by content, referenced by the jobs that use them.
-- A re-roll used to copy its parent's image bytes into a new ``job_images``
-- row; now each distinct image is one ``images`` row (addressed by the
-- SHA-256 of its bytes) and each job holds a reference. References of a job
-- that is terminal and past HAILUO_IMAGE_RETENTION_HOURS are deleted, then
-- every image no reference points to (storage/jobs.py ``sweep_images``).
-- ``sha256()`` is registered on the connection by storage/db.py.

CREATE TABLE images (
    hash        TEXT PRIMARY KEY CHECK (length(hash) = 64),
    mime        TEXT NOT NULL,
    data        BLOB NOT NULL,
    size        INTEGER NOT NULL CHECK (size >= 0)
);

CREATE TABLE job_image_refs (
    job_id  INTEGER NOT NULL REFERENCES jobs (id),
    role    TEXT NOT NULL CHECK (role IN ('first', 'last')),
    hash    TEXT NOT NULL REFERENCES images (hash),
    PRIMARY KEY (job_id, role)
);

CREATE INDEX job_image_refs_hash ON job_image_refs (hash);

INSERT OR IGNORE INTO images (hash, mime, data, size)
SELECT sha256(data), mime, data, length(data) FROM job_images;

INSERT INTO job_image_refs (job_id, role, hash)
SELECT job_id, role, sha256(data) FROM job_images;

DROP TABLE job_images;

-- The old name still reads: a job's images with their bytes.
CREATE VIEW job_images AS
SELECT r.job_id AS job_id, r.role AS role, i.mime AS mime, i.data AS data
FROM job_image_refs r JOIN images i ON i.hash = r.hash;
