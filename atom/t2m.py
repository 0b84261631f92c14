"""Text to motion in one call: generate samples for a prompt through the generator service and
write, per sample, what a person needs to look at it or take it elsewhere.

    out/
      prompt.json                 the text, seeds, model and the files written
      sample-0/joints.npy         (T, 22, 3) float32, metres, Y up, 20 fps
      sample-0/features.npy       (T, 263) HumanML3D features (un-normalised; the joints are recovered from them)
      sample-0/motion.mp4         rendered by the renderer service (format mp4; motion.gif with format gif)
      sample-0/motion.bvh         the 22-joint skeleton, root path and joint rotations (format bvh)
      sample-0/motion.npz         the motion record as stored: joints, features, tokens, meta (format npz)
      sample-0/motion_smpl.npz    SMPL parameters in AMASS's npz layout, by inverse kinematics (format smpl;
                                  keys and frames in atom.motion.smpl_export)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from atom.motion.bvh import joints_to_bvh
from atom.motion.record import MotionRecord
from atom.motion.smpl_export import write_smpl_npz
from atom.pipeline.stages import sampling_params
from atom.runtime.client import ServiceClient
from atom.settings import GenerateSettings
from atom.store import ArtifactStore
from atom.v1 import common_pb2, generator_pb2, renderer_pb2

FORMATS = ("mp4", "gif", "bvh", "npz", "smpl")
# The formats the renderer service makes: t2m format -> (render form, file name).
RENDERED = {"mp4": ("video", "motion.mp4"), "gif": ("gif", "motion.gif")}


@dataclass(frozen=True)
class T2MRequest:
    text: str
    samples: int = 4
    seed: int = 0
    adapter: str = ""
    formats: tuple[str, ...] = ("mp4",)
    size: int = 256  # video pixels
    smpl_model: str = ""  # a SMPL model .npz whose rest pose the smpl export is solved against (optional)

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise ValueError('the prompt is empty; e.g. atomctl t2m "a person jumps twice, then waves"')
        if len(self.text) > 1000:
            raise ValueError("the prompt is longer than 1000 characters")
        if not 1 <= self.samples <= 100:
            raise ValueError(f"--samples must be within 1..100, got {self.samples}")
        unknown = set(self.formats) - set(FORMATS)
        if unknown:
            raise ValueError(f"unknown format(s) {sorted(unknown)}; choose from {', '.join(FORMATS)}")


def prompt_for(text: str) -> common_pb2.Prompt:
    return common_pb2.Prompt(prompt_id="t2m-" + hashlib.sha256(text.encode()).hexdigest()[:12], text=text, task="general")


def text_to_motion(
    store: ArtifactStore,
    generator: ServiceClient,
    renderer: ServiceClient | None,
    base_model: str,
    request: T2MRequest,
    gen: GenerateSettings,
    out: Path,
    smpl_rest: np.ndarray | None = None,
) -> dict:
    """Generate, then write the samples under `out`; returns the summary also written to prompt.json.

    smpl_rest: the rest joints of request.smpl_model (atom.motion.smpl_export.model_rest_joints),
    read by the caller before anything starts so that a bad model file fails at once."""
    reply = generator_pb2.GenerateRequest(
        prompts=[prompt_for(request.text)],
        samples_per_prompt=request.samples,
        seed=request.seed,
        model=common_pb2.ModelRef(base=base_model, adapter=request.adapter),
        sampling=sampling_params(gen),
    )
    motions = sorted(generator.stream("Generate", reply, timeout=3600), key=lambda m: m.sample_index)
    out.mkdir(parents=True, exist_ok=True)
    videos: dict[str, dict[str, str]] = {}  # file name -> motion key -> rendered artifact key
    keys = [m.motion.key for m in motions if m.motion.key]
    for fmt, (form, name) in RENDERED.items():
        if fmt in request.formats and renderer is not None and keys:
            req = renderer_pb2.RenderRequest(
                motions=[common_pb2.ArtifactRef(key=k) for k in keys],
                options=renderer_pb2.RenderOptions(form=form, width=request.size, height=request.size),
            )
            videos[name] = {r.motion.key: r.images[0].key for r in renderer.stream("Render", req, timeout=3600)}
    samples = []
    for m in motions:
        folder = out / f"sample-{m.sample_index}"
        entry = {
            "sample_index": m.sample_index,
            "sample_seed": m.sample_seed,
            "motion": m.motion.key,
            "num_frames": m.num_frames,
            "num_tokens": m.num_tokens,
            "files": [],
        }
        if not m.motion.key:
            entry["note"] = "the model produced no motion for this sample"
            samples.append(entry)
            continue
        folder.mkdir(exist_ok=True)
        data = store.get_bytes(m.motion.key)
        record = MotionRecord.from_bytes(data, m.motion.key)
        files = {"joints.npy": None, "features.npy": None}
        np.save(folder / "joints.npy", record.joints)
        np.save(folder / "features.npy", record.features)
        for name, rendered in videos.items():
            if m.motion.key in rendered:
                (folder / name).write_bytes(store.get_bytes(rendered[m.motion.key]))
                files[name] = None
        if "bvh" in request.formats:
            (folder / "motion.bvh").write_text(joints_to_bvh(record.joints))
            files["motion.bvh"] = None
        if "npz" in request.formats:
            (folder / "motion.npz").write_bytes(data)
            files["motion.npz"] = None
        if "smpl" in request.formats:
            write_smpl_npz(folder / "motion_smpl.npz", record.joints, smpl_rest)
            files["motion_smpl.npz"] = None
        entry["files"] = [f"{folder.name}/{name}" for name in files]
        samples.append(entry)
    summary = {"request": asdict(request), "base_model": base_model, "model_id": motions[0].model_id if motions else "", "samples": samples}
    (out / "prompt.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
