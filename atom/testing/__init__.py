"""Helpers for tests and benchmarks that start real processes (an S3 server, services)."""
