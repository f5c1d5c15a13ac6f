"""Credits, quotas, budgets and usage reports: who may spend what, and what was spent.

May import ``hailuo.model``, ``hailuo.clock``, the other core folders and ``storage/``;
never ``providers/``, never discord.
"""
