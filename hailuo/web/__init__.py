"""The bot's own HTTP server: ``/healthz``, ``/metrics`` and the providers' callbacks.

May import ``hailuo.model`` and the other core folders; never ``providers/``, never discord.
"""
