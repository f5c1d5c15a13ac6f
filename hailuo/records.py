"""The records the front end reads, from one core module: ``cogs/`` never import ``storage``.

The stored records (a job, a ledger line, an audit row, an approval request, the
moderation settings) are plain frozen data; they are defined beside the SQL
that reads them today and re-exported here, so a cog's import names the core.
When the records move to the core's model floor only these lines change.
"""

from __future__ import annotations

from hailuo.model.job import Job as Job
from hailuo.model.job import StoredImage as StoredImage
from hailuo.model.moderation import DAY as DAY
from hailuo.model.moderation import ApprovalMode as ApprovalMode
from hailuo.model.moderation import ModerationSettings as ModerationSettings
from hailuo.model.moderation import SettingsChange as SettingsChange
from storage.approvals import ApprovalDecision as ApprovalDecision
from storage.approvals import ApprovalRequest as ApprovalRequest
from storage.audit import AuditAction as AuditAction
from storage.audit import AuditEntry as AuditEntry
from storage.audit import AuditPage as AuditPage
from storage.blocklist import BlocklistEntry as BlocklistEntry
from storage.blocklist import BlocklistKind as BlocklistKind
from storage.ledger import LedgerEntry as LedgerEntry
from storage.ledger import LedgerEntryKind as LedgerEntryKind
