"""hailuo.moderation.screening."""
