-- One interaction makes at most one job (issue 11, finding 6). Discord may deliver
-- the same INTERACTION_CREATE twice (a gateway replay, two processes on one token),
-- and a confirm press may land twice: the second must not create, and charge, a
-- second job. Rows that already share an interaction id (none are expected) keep it
-- on their oldest job only, so the index can be built on any existing database.

UPDATE jobs SET interaction_id = NULL
WHERE interaction_id IS NOT NULL
  AND id NOT IN (SELECT MIN(id) FROM jobs WHERE interaction_id IS NOT NULL GROUP BY interaction_id);

CREATE UNIQUE INDEX jobs_one_per_interaction ON jobs (interaction_id)
    WHERE interaction_id IS NOT NULL;
