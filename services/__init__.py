"""The five atom services. Each folder owns its domain code and its servicer (server.py);
a service never imports another service."""
