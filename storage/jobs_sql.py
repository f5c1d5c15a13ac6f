"""The SQL of the jobs repository (``storage.jobs``), as named statements."""

from hailuo.model.status import IN_FLIGHT

INSERT_JOB = """
INSERT INTO jobs (guild_id, channel_id, user_id, interaction_id, status_message_id, status,
                  spec, cost, period, locale, attachment_limit, notify, created_at, updated_at)
VALUES (:guild_id, :channel_id, :user_id, :interaction_id, :status_message_id, :status,
        :spec, :cost, :period, :locale, :attachment_limit, :notify, :now, :now)
"""
#: The member's stored way of being told (``storage.delivery``), read by the insert itself
#: in the creating transaction: what a ``NewJob`` with no ``notify`` of its own gets.
MEMBER_NOTIFY = (
    "COALESCE((SELECT notify FROM member_settings"
    " WHERE guild_id = :guild_id AND user_id = :user_id), 'mention')"
)
# Images are stored once by content (migration 005): a re-roll adds a reference, not bytes.
INSERT_IMAGE = """
INSERT INTO images (hash, mime, data, size) VALUES (:hash, :mime, :data, :size)
ON CONFLICT (hash) DO NOTHING
"""
INSERT_IMAGE_REF = "INSERT INTO job_image_refs (job_id, role, hash) VALUES (:job, :role, :hash)"
SELECT_JOB = "SELECT * FROM jobs WHERE id = :id"
SELECT_BY_INTERACTION = "SELECT id FROM jobs WHERE interaction_id = :interaction"
SELECT_JOB_BY_INTERACTION = "SELECT * FROM jobs WHERE interaction_id = :interaction"
SELECT_IMAGES = """
SELECT r.role, i.mime, i.data FROM job_image_refs r JOIN images i ON i.hash = r.hash
WHERE r.job_id = :id
"""
#: References of jobs that ended before the cut-off (past the re-roll window).
DELETE_OLD_IMAGE_REFS = """
DELETE FROM job_image_refs WHERE job_id IN (
    SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < :before
    AND status IN ('delivered', 'rejected', 'expired', 'cancelled', 'failed', 'delivery_failed')
)
"""
DELETE_UNREFERENCED_IMAGES = """
DELETE FROM images WHERE NOT EXISTS (SELECT 1 FROM job_image_refs r WHERE r.hash = images.hash)
"""
#: The open states as the partial index ``jobs_in_flight`` (migration 009) words them:
#: a query with this very term reads the open jobs through it, not every job ever made.
#: From ``hailuo.model.status.IN_FLIGHT`` (schema words), never from input.
_IN_FLIGHT_WORDS = ", ".join(f"'{status.value}'" for status in sorted(IN_FLIGHT))
IN_FLIGHT_TERM = f"status IN ({_IN_FLIGHT_WORDS})"
# The open jobs through ``jobs_in_flight``; in no order (one by id would walk the table).
SELECT_OPEN = f"SELECT * FROM jobs WHERE {IN_FLIGHT_TERM}"  # noqa: S608
SELECT_BY_STATUS = "SELECT * FROM jobs WHERE status = :status ORDER BY id"
#: An open state's jobs, through ``jobs_in_flight`` too (the caller sorts them).
SELECT_BY_OPEN_STATUS = f"SELECT * FROM jobs WHERE status = :status AND {IN_FLIGHT_TERM}"  # noqa: S608
#: The worker's schedule: only what is due, in due order, through the partial indexes
#: ``jobs_poll_due`` and ``jobs_delivery_due`` (migration 007); never a scan of every open job.
#: Polls that found their task still running, many in one statement (``PollRecord`` rows as
#: a JSON array), each guarded by the state it was read in; the ids written come back.
RECORD_POLLS = """
UPDATE jobs SET status = r.to_status, polls = r.polls, next_poll_at = r.next_poll_at,
    progress = COALESCE(r.progress, jobs.progress), updated_at = r.now,
    revision = jobs.revision + 1
FROM (
    SELECT value ->> '$[0]' AS id, value ->> '$[1]' AS status, value ->> '$[2]' AS to_status,
        value ->> '$[3]' AS polls, value ->> '$[4]' AS next_poll_at,
        value ->> '$[5]' AS progress, value ->> '$[6]' AS now
    FROM json_each(:records)
) AS r
WHERE jobs.id = r.id AND jobs.status = r.status
RETURNING jobs.id
"""
#: The next due time after ``:after`` (the worker's last read: what was due then and is
#: still due is held for a reason, a step under way among them, and must not mask it).
SELECT_NEXT_DUE = """
SELECT MIN(t) AS t FROM (
    SELECT MIN(next_poll_at) AS t FROM jobs
    WHERE status IN ('submitted', 'running') AND next_poll_at > :after
    UNION ALL
    SELECT MIN(next_delivery_at) AS t FROM jobs
    WHERE status = 'succeeded' AND next_delivery_at > :after
)
"""
SET_CARD_SEEN = "UPDATE jobs SET card_seen = :seen, revision = revision + 1 WHERE id = :id"
SET_CARDS_SEEN = """
UPDATE jobs SET card_seen = s.value ->> '$[1]', revision = jobs.revision + 1
FROM json_each(:seen) AS s WHERE jobs.id = s.value ->> '$[0]'
RETURNING jobs.id
"""
SELECT_DURATIONS = "SELECT key, recent FROM learned_durations"
PUT_DURATION = """
INSERT INTO learned_durations (key, recent, updated_at) VALUES (:key, :recent, :now)
ON CONFLICT (key) DO UPDATE SET recent = excluded.recent, updated_at = excluded.updated_at
"""
SELECT_ENDED_WITHOUT_CARD = """
SELECT * FROM jobs WHERE status_message_id IS NULL AND channel_id != 0 AND finished_at >= :since
AND status IN ('delivered', 'rejected', 'expired', 'cancelled', 'failed', 'delivery_failed')
ORDER BY id
"""
#: Measured run times (acceptance to success) of the latest delivered jobs, newest first.
SELECT_RECENT_RUNS = """
SELECT spec, json_extract(provider_meta, '$.succeeded_at') - submitted_at AS seconds FROM jobs
WHERE status = 'delivered' AND submitted_at IS NOT NULL
AND json_extract(provider_meta, '$.succeeded_at') IS NOT NULL
ORDER BY id DESC LIMIT :limit
"""
SELECT_BY_TASK = "SELECT * FROM jobs WHERE provider = :provider AND provider_task_id = :task"
COUNT_BY_STATUS = "SELECT status, COUNT(*) AS n FROM jobs GROUP BY status"
SELECT_RECENT_FOR_MEMBER = """
SELECT * FROM jobs WHERE guild_id = :guild AND user_id = :user ORDER BY id DESC LIMIT :limit
"""
SET_STATUS_MESSAGE = """
UPDATE jobs SET status_message_id = :message, channel_id = :channel, updated_at = :now,
    revision = revision + 1
WHERE id = :id
"""
CLAIM_STATUS_MESSAGE = """
UPDATE jobs SET status_message_id = :message, updated_at = :now, revision = revision + 1
WHERE id = :id AND status_message_id IS NULL
"""
GET_STATE = "SELECT value FROM bot_state WHERE key = :key"
PUT_STATE = """
INSERT INTO bot_state (key, value) VALUES (:key, :value)
ON CONFLICT (key) DO UPDATE SET value = excluded.value
"""
#: Compare-and-set of one value: the first writer of a key, or the one that saw its value.
CREATE_STATE = """
INSERT INTO bot_state (key, value) VALUES (:key, :value) ON CONFLICT (key) DO NOTHING
"""
SWAP_STATE = "UPDATE bot_state SET value = :value WHERE key = :key AND value = :expected"

#: Columns a transition (or a same-state update) may set besides ``status``.
