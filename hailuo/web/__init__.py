"""hailuo.web.server."""
