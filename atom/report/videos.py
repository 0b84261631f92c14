"""WebM videos of motions for the run browser, made by the renderer service (cached there by the
motion's content, so a second report costs nothing)."""

from __future__ import annotations

from atom.report.site import RenderWebm
from atom.runtime.client import ServiceClient
from atom.store import ArtifactStore
from atom.v1 import common_pb2, renderer_pb2

CHUNK = 16  # motions per Render call: results stream back as each is done


def webm_renderer(store: ArtifactStore, renderer: ServiceClient, size: int) -> RenderWebm:
    """A RenderWebm that asks `renderer` for VP9 WebM renders and reads them from the store."""

    def render(motion_keys: list[str]) -> dict[str, bytes]:
        options = renderer_pb2.RenderOptions(form="webm", width=size, height=size)
        out = {}
        for i in range(0, len(motion_keys), CHUNK):
            req = renderer_pb2.RenderRequest(motions=[common_pb2.ArtifactRef(key=k) for k in motion_keys[i : i + CHUNK]], options=options)
            for result in renderer.stream("Render", req, timeout=1800):
                out[result.motion.key] = store.get_bytes(result.images[0].key)
        return out

    return render
