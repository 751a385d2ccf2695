"""Forwarder: streams ALB log files from S3, parses every line, posts JSON batches over HTTPS."""

__version__ = "0.1.0"
