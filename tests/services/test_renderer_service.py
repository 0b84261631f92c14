import grpc
import numpy as np
import pytest

from atom.motion.events import EventLabel
from atom.motion.record import MotionRecord
from atom.motion.world.compose import compose
from atom.v1 import common_pb2, renderer_pb2


def _motion(store, seed=0):
    clip = compose([EventLabel("walk_forward"), EventLabel("wave")], np.random.default_rng(seed))
    return store.put_content_addressed("motions", MotionRecord(joints=clip.joints).to_bytes(), ".npz").key


def test_render_forms_cached_and_sampled(start):
    r = start("renderer")
    key = _motion(r.store)
    T = MotionRecord.from_bytes(r.store.get_bytes(key)).num_frames
    opts = renderer_pb2.RenderOptions(form="frame_by_frame", interval=8, width=128, height=128)
    req = renderer_pb2.RenderRequest(motions=[common_pb2.ArtifactRef(key=key)], options=opts)
    (res,) = list(r.client.stream("Render", req))
    assert not res.cached and list(res.frame_indices) == list(range(0, T, 8))
    assert len(res.images) == len(res.frame_indices)
    assert all(r.store.get_bytes(i.key)[:8] == b"\x89PNG\r\n\x1a\n" for i in res.images)
    assert r.store.get_bytes(res.images[0].key) != r.store.get_bytes(res.images[-1].key)
    (again,) = list(r.client.stream("Render", req))
    assert again.cached and [i.key for i in again.images] == [i.key for i in res.images]
    for form in ("full_image", "trajectory_image"):
        opts = renderer_pb2.RenderOptions(form=form, width=96, height=96)
        (res,) = list(r.client.stream("Render", renderer_pb2.RenderRequest(motions=[common_pb2.ArtifactRef(key=key)], options=opts)))
        assert len(res.images) == 1 and res.render_key.startswith("renders/")


def test_render_bad_input(start):
    r = start("renderer")
    key = _motion(r.store)
    bad = renderer_pb2.RenderRequest(
        motions=[common_pb2.ArtifactRef(key=key)], options=renderer_pb2.RenderOptions(form="full_image", width=100000)
    )
    with pytest.raises(grpc.RpcError) as err:
        list(r.client.stream("Render", bad))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "options" in err.value.details()
    joints = np.zeros((10, 22, 3), np.float32)
    nan_key = "motions/nan.npz"
    import io

    buf = io.BytesIO()
    j = joints.copy()
    j[3, 4, 1] = np.nan
    np.savez(buf, joints=j, meta=np.array("{}"))
    r.store.put_bytes(nan_key, buf.getvalue())
    with pytest.raises(grpc.RpcError) as err:
        list(r.client.stream("Render", renderer_pb2.RenderRequest(motions=[common_pb2.ArtifactRef(key=nan_key)])))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "NaN" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        list(r.client.stream("Render", renderer_pb2.RenderRequest(motions=[common_pb2.ArtifactRef(key="motions/none.npz")])))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
