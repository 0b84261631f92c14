"""A small Renderer servicer with controllable behaviour, for testing the shared runtime
(health, drain, errors, deadlines). It runs in a real gRPC server."""

import sys
import threading
import time

from atom.runtime.errors import InvalidArgument
from atom.runtime.server import ServeConfig, ServiceSpec, run_service
from atom.v1 import renderer_pb2, renderer_pb2_grpc


class SlowRenderer(renderer_pb2_grpc.RendererServicer):
    """Render streams one result per motion; options.width selects behaviour:
    width == 1 -> raise InvalidArgument; width == 2 -> sleep options.height milliseconds once,
    deaf to cancellation (work that never checks); otherwise sleep options.height ms per motion."""

    def __init__(self):
        self.produced = 0
        self.ended = 0  # calls over (finished, failed, cancelled or past their deadline)
        self.lock = threading.Lock()

    def _end(self) -> None:
        with self.lock:
            self.ended += 1

    def Render(self, request, context):
        context.add_callback(self._end)
        if request.options.width == 1:
            raise InvalidArgument("options.width", "must be at least 32 pixels")
        if request.options.width == 2:
            print("busy", flush=True)  # the test waits for this line before it signals
            time.sleep(request.options.height / 1000.0)
        for ref in request.motions:
            time.sleep(request.options.height / 1000.0)
            with self.lock:
                self.produced += 1
            yield renderer_pb2.RenderResult(motion=ref, form=request.options.form)


def spec(servicer=None) -> ServiceSpec:
    return ServiceSpec(
        name="renderer",
        servicer=servicer or SlowRenderer(),
        add_to_server=renderer_pb2_grpc.add_RendererServicer_to_server,
        full_name="atom.v1.Renderer",
    )


if __name__ == "__main__":
    port = int(sys.argv[1])
    grace_s = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    run_service(
        spec(),
        ServeConfig(host="127.0.0.1", port=port, metrics_port=None, grace_s=grace_s),
        ready=lambda running: print("ready", flush=True),
    )
