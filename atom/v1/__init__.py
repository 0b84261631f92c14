"""Generated gRPC code for protos/atom/v1 (python -m atom.protogen)."""
