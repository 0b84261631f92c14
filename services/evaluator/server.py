"""The evaluator's gRPC servicer. RPCs not filled in yet answer UNIMPLEMENTED (the generated base)."""

from __future__ import annotations

from atom.runtime.server import ServiceSpec
from atom.store import open_store
from atom.v1 import evaluator_pb2_grpc


class EvaluatorServicer(evaluator_pb2_grpc.EvaluatorServicer):
    def __init__(self, store_url: str):
        self.store = open_store(store_url)


def build_spec(store_url: str) -> ServiceSpec:
    servicer = EvaluatorServicer(store_url)
    return ServiceSpec(name="evaluator", servicer=servicer, add_to_server=evaluator_pb2_grpc.add_EvaluatorServicer_to_server,
                       full_name="atom.v1.Evaluator")
