"""Options, sampling, cache keys and input validation (no OpenGL needed)."""

import numpy as np
import pytest

from services.renderer import (
    RenderInputError,
    RenderOptions,
    SmplModelMissing,
    cache_key,
    render,
    sample_indices,
)
from services.renderer.synthetic import walk

SHA = "ab" * 32


def test_sample_indices_every_kth_frame():
    assert sample_indices(20, 8) == [0, 8, 16]
    assert sample_indices(17, 8) == [0, 8, 16]
    assert sample_indices(16, 8) == [0, 8]
    assert sample_indices(5, 1) == [0, 1, 2, 3, 4]
    assert sample_indices(3, 8) == [0]
    assert sample_indices(196) == list(range(0, 196, 8))


@pytest.mark.parametrize("n,k", [(0, 8), (-1, 8), (10, 0), (10, -2), (10, 2.5), (True, 8)])
def test_sample_indices_rejects_bad_arguments(n, k):
    with pytest.raises(RenderInputError):
        sample_indices(n, k)


def test_options_defaults_are_the_pipelines():
    """One place for each default (atom.settings.RenderSettings): the full image the embedded run
    uses, every 8th frame as in the paper, 256 px."""
    o = RenderOptions()
    assert (o.form, o.interval, o.width, o.height, o.style, o.camera) == ("full_image", 8, 256, 256, "skeleton", "follow")


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"form": "apng"}, "unknown form"),
        ({"style": "cartoon"}, "unknown style"),
        ({"camera": "drone"}, "unknown camera"),
        ({"width": 4096}, "width must be between 32 and 2048"),
        ({"height": 16}, "height must be between 32 and 2048"),
        ({"width": 256.0}, "width must be an integer"),
        ({"interval": 0}, "interval"),
        ({"interval": True}, "interval must be an integer"),
        ({"form": "video", "width": 255}, "even width and height"),
    ],
)
def test_options_validation(kwargs, needle):
    with pytest.raises(RenderInputError, match=needle):
        RenderOptions(**kwargs)


def test_with_defaults_maps_unset_proto_fields():
    assert RenderOptions.with_defaults() == RenderOptions()
    o = RenderOptions.with_defaults(form="full_image", interval=0, width=320, height=0, style="", camera="fixed")
    assert o == RenderOptions(form="full_image", interval=8, width=320, height=256, camera="fixed")
    with pytest.raises(RenderInputError):
        RenderOptions.with_defaults(width=-5)


def test_odd_sizes_are_fine_for_images():
    assert RenderOptions(form="frame_by_frame", width=255, height=99).width == 255


def test_cache_key_layout():
    assert cache_key(SHA, RenderOptions(form="frame_by_frame")) == f"renders/{SHA}/frame_by_frame-k8-256x256-skeleton/"
    opts = RenderOptions(form="full_image", interval=4, width=320, height=240, style="mesh")
    assert cache_key(SHA, opts) == f"renders/{SHA}/full_image-k4-320x240-mesh/"
    # A fixed camera draws different pictures, so it must never share a follow-camera key.
    assert cache_key(SHA, RenderOptions(form="frame_by_frame", camera="fixed")).endswith("-skeleton-fixed/")


@pytest.mark.parametrize("bad", ["abc", "AB" * 32, "../" + "a" * 61, 123])
def test_cache_key_rejects_non_digests(bad):
    with pytest.raises(RenderInputError, match="sha256"):
        cache_key(bad, RenderOptions(form="frame_by_frame"))


def _joints(T=20):
    return walk(T)


@pytest.mark.parametrize(
    "joints,needle",
    [
        (np.zeros((20, 21, 3)), "shape"),
        (np.zeros((20, 22)), "shape"),
        (np.zeros((20, 22, 3, 1)), "shape"),
        (np.zeros((1, 22, 3)), "at least 2 frames"),
        (np.zeros((0, 22, 3)), "at least 2 frames"),
        (np.array([["a"] * 3] * 22 * 2).reshape(2, 22, 3), "numeric"),
        (np.full((5, 22, 3), 5000.0), "metres"),
    ],
)
def test_render_rejects_bad_joints(joints, needle):
    with pytest.raises(RenderInputError, match=needle):
        render(joints, RenderOptions(form="frame_by_frame"))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_render_rejects_non_finite_joints(value):
    j = _joints()
    j[7, 3, 1] = value
    with pytest.raises(RenderInputError, match="NaN or infinite.*frame 7"):
        render(j, RenderOptions(form="frame_by_frame"))


def test_render_rejects_non_options():
    with pytest.raises(RenderInputError, match="RenderOptions"):
        render(_joints(), {"form": "frame_by_frame"})


def test_mesh_without_model_says_what_is_missing_and_how_to_convert(monkeypatch, tmp_path):
    monkeypatch.delenv("ATOM_SMPL_MODEL", raising=False)
    with pytest.raises(SmplModelMissing) as err:
        render(_joints(), RenderOptions(form="frame_by_frame", style="mesh"))
    msg = str(err.value)
    assert "ATOM_SMPL_MODEL" in msg and "convert_smpl_pkl" in msg and "skeleton" in msg

    monkeypatch.setenv("ATOM_SMPL_MODEL", str(tmp_path / "SMPL_NEUTRAL.npz"))
    with pytest.raises(SmplModelMissing, match="SMPL_NEUTRAL.npz.*does not exist"):
        render(_joints(), RenderOptions(form="frame_by_frame", style="mesh"))

    pkl = tmp_path / "SMPL_NEUTRAL.pkl"
    pkl.write_bytes(b"not really")
    monkeypatch.setenv("ATOM_SMPL_MODEL", str(pkl))
    with pytest.raises(SmplModelMissing, match="convert it to .npz"):
        render(_joints(), RenderOptions(form="frame_by_frame", style="mesh"))
