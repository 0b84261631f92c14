"""WebM videos of motions for the run browser, made by the renderer service (cached there by the
motion's content, so a second report costs nothing)."""

from __future__ import annotations

from typing import Sequence

from atom.pipeline.fanout import FanOut
from atom.report.site import RenderWebm
from atom.runtime.client import ServiceClient
from atom.store import ArtifactStore
from atom.v1 import common_pb2, renderer_pb2

CHUNK = 4  # motions per Render call
CONCURRENCY = 2  # calls in flight: one renderer draws a chunk's frames while another chunk encodes


def webm_renderer(store: ArtifactStore, renderer: ServiceClient, size: int) -> RenderWebm:
    """A RenderWebm that asks `renderer` for VP9 WebM renders and reads them from the store."""

    def render(motion_keys: list[str]) -> dict[str, bytes]:
        options = renderer_pb2.RenderOptions(form="webm", width=size, height=size)

        def call(chunk: Sequence[str]):
            req = renderer_pb2.RenderRequest(motions=[common_pb2.ArtifactRef(key=k) for k in chunk], options=options)
            return renderer.stream("Render", req, timeout=1800)

        fan = FanOut(call, expected=lambda k: [k], result_key=lambda r: r.motion.key, chunk_size=CHUNK, concurrency=CONCURRENCY)
        return {result.motion.key: store.get_bytes(result.images[0].key) for result in fan.run(motion_keys).values()}

    return render
