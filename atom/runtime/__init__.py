"""The runtime every atom service shares: serving, errors, telemetry, clients."""
