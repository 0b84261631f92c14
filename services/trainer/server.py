"""The trainer's gRPC servicer. RPCs not filled in yet answer UNIMPLEMENTED (the generated base)."""

from __future__ import annotations

from atom.runtime.server import ServiceSpec
from atom.store import open_store
from atom.v1 import trainer_pb2_grpc


class TrainerServicer(trainer_pb2_grpc.TrainerServicer):
    def __init__(self, store_url: str):
        self.store = open_store(store_url)


def build_spec(store_url: str) -> ServiceSpec:
    servicer = TrainerServicer(store_url)
    return ServiceSpec(name="trainer", servicer=servicer, add_to_server=trainer_pb2_grpc.add_TrainerServicer_to_server,
                       full_name="atom.v1.Trainer")
