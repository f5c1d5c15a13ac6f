"""hailuo.money."""
