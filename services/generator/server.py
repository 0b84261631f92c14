"""The generator's gRPC servicer. RPCs not filled in yet answer UNIMPLEMENTED (the generated base)."""

from __future__ import annotations

from atom.runtime.server import ServiceSpec
from atom.store import open_store
from atom.v1 import generator_pb2_grpc


class GeneratorServicer(generator_pb2_grpc.GeneratorServicer):
    def __init__(self, store_url: str):
        self.store = open_store(store_url)


def build_spec(store_url: str) -> ServiceSpec:
    servicer = GeneratorServicer(store_url)
    return ServiceSpec(name="generator", servicer=servicer, add_to_server=generator_pb2_grpc.add_GeneratorServicer_to_server,
                       full_name="atom.v1.Generator")
