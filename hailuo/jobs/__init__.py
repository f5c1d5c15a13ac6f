"""hailuo.jobs.desk."""
