"""The judge's gRPC servicer. RPCs not filled in yet answer UNIMPLEMENTED (the generated base)."""

from __future__ import annotations

from atom.runtime.server import ServiceSpec
from atom.store import open_store
from atom.v1 import judge_pb2_grpc


class JudgeServicer(judge_pb2_grpc.JudgeServicer):
    def __init__(self, store_url: str):
        self.store = open_store(store_url)


def build_spec(store_url: str) -> ServiceSpec:
    servicer = JudgeServicer(store_url)
    return ServiceSpec(name="judge", servicer=servicer, add_to_server=judge_pb2_grpc.add_JudgeServicer_to_server,
                       full_name="atom.v1.Judge")
