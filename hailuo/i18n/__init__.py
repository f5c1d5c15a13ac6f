"""Every member-facing word: the English and Chinese catalogs, catalog terms for the
model's values, a job's state in words.

May import ``hailuo.model`` and ``storage/`` records; never ``providers/``, never discord.
"""
