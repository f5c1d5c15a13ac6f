"""hailuo.model."""
