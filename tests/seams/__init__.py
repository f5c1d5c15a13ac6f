"""Entry points that run the real bot with a test seam (a pause at one point of its life)."""
