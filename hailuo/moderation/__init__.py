"""Moderation: prompt screening and its folding, the gate, the approval queue, the audit log.

May import ``hailuo.model``, ``hailuo.i18n``, the other core folders and ``storage/``;
never ``providers/``, never discord.
"""
