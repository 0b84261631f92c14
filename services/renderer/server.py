"""The renderer's gRPC servicer: Render streams one result per motion. Renders are keyed by
(motion, form, k, size, style, camera) in the store, so a repeated request costs nothing."""

from __future__ import annotations

import logging

from atom.motion.record import MotionFormatError, MotionRecord
from atom.runtime import telemetry
from atom.runtime.errors import FailedPrecondition, InvalidArgument, Unavailable, require, require_key
from atom.runtime.server import ServiceSpec, store_problem
from atom.store import open_store, sha256_hex
from atom.v1 import common_pb2, renderer_pb2, renderer_pb2_grpc
from services.renderer.api import render_cached
from services.renderer.gl import RendererUnavailable
from services.renderer.options import RenderInputError, RenderOptions, cache_key

log = logging.getLogger("atom.renderer")

FRAMES_RENDERED = telemetry.counter("atom_frames_rendered_total", "Frames drawn (cache hits excluded)", ("form",))
RENDER_CACHE_HITS = telemetry.counter("atom_render_cache_hits_total", "Renders served from the store", ("form",))
MAX_MOTIONS = 1024


def options_from_proto(o: renderer_pb2.RenderOptions) -> RenderOptions:
    try:
        return RenderOptions(
            form=o.form or "frame_by_frame",
            interval=o.interval or 8,
            width=o.width or 256,
            height=o.height or 256,
            style=o.style or "skeleton",
            camera=o.camera or "follow",
        )
    except RenderInputError as exc:
        raise InvalidArgument("options", str(exc)) from None


class RendererServicer(renderer_pb2_grpc.RendererServicer):
    def __init__(self, store_url: str):
        self.store = open_store(store_url)

    def Render(self, request, context):
        options = options_from_proto(request.options)
        require(len(request.motions) > 0, "motions", "no motions to render")
        require(len(request.motions) <= MAX_MOTIONS, "motions", f"at most {MAX_MOTIONS} per request, got {len(request.motions)}")
        for i, ref in enumerate(request.motions):
            require_key(ref.key, f"motions[{i}].key", "name a motion, e.g. motions/<sha256>.npz")
        for i, ref in enumerate(request.motions):
            if not context.is_active():
                return
            data = self.store.get_bytes(ref.key)
            try:
                joints = MotionRecord.from_bytes(data, ref.key).joints
            except MotionFormatError as exc:
                raise InvalidArgument(f"motions[{i}]", str(exc)) from None
            # The render cache is keyed by the hash of the bytes read here, never by the key's name:
            # a caller could otherwise store other joints under a real motion's hash and have its
            # renders served for that motion.
            sha = sha256_hex(data)
            try:
                out, cached = render_cached(self.store, sha, joints, options)
            except RenderInputError as exc:
                raise InvalidArgument(f"motions[{i}]", str(exc)) from None
            except RendererUnavailable as exc:
                raise Unavailable(f"headless rendering is unavailable on this host: {exc}") from None
            except FileNotFoundError as exc:  # style=mesh without SMPL model files
                raise FailedPrecondition(str(exc)) from None
            if cached:
                RENDER_CACHE_HITS.labels(options.form).inc()
            else:
                FRAMES_RENDERED.labels(options.form).inc(len(out.frame_indices))
            prefix = cache_key(sha, options)
            yield renderer_pb2.RenderResult(
                motion=ref,
                form=options.form,
                cached=cached,
                render_key=prefix.rstrip("/"),
                frame_indices=out.frame_indices,
                images=[
                    common_pb2.ArtifactRef(key=prefix + name, media_type=out.media_type, size=len(img))
                    for name, img in zip(out.filenames(), out.images)
                ],
            )


def build_spec(store_url: str) -> ServiceSpec:
    servicer = RendererServicer(store_url)
    return ServiceSpec(
        name="renderer",
        servicer=servicer,
        add_to_server=renderer_pb2_grpc.add_RendererServicer_to_server,
        full_name="atom.v1.Renderer",
        ready=lambda: store_problem(servicer.store),
    )
