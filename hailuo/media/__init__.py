"""hailuo.media."""
