"""The job's life: the desk that takes a request, the worker and its steps (submitting,
delivering), status cards, failures, retry pacing, provider resilience and limits, the
capability validator, the card's controls.

May import ``hailuo.model``, the other core folders, and ``storage/``; never ``providers/``
(adapters and their capability table are handed in by the wiring), never discord.
"""
