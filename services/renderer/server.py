"""The renderer's gRPC servicer. RPCs not filled in yet answer UNIMPLEMENTED (the generated base)."""

from __future__ import annotations

from atom.runtime.server import ServiceSpec
from atom.store import open_store
from atom.v1 import renderer_pb2_grpc


class RendererServicer(renderer_pb2_grpc.RendererServicer):
    def __init__(self, store_url: str):
        self.store = open_store(store_url)


def build_spec(store_url: str) -> ServiceSpec:
    servicer = RendererServicer(store_url)
    return ServiceSpec(name="renderer", servicer=servicer, add_to_server=renderer_pb2_grpc.add_RendererServicer_to_server,
                       full_name="atom.v1.Renderer")
