"""Files: image checks and preparation, image intake, result downloads (with the
network guard), the re-encode that shrinks a video, disk housekeeping.

May import ``hailuo.model`` and ``storage/``; never ``providers/``, never discord.
"""
