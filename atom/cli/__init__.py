"""atomctl, the Click controller."""
