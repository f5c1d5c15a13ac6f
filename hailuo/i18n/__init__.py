"""hailuo.i18n."""
