"""atom: AToM (event-level VLM-feedback alignment of text-to-motion) as gRPC microservices."""

__version__ = "0.1.0"
