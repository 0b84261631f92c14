"""A model bundle: everything needed to turn a prompt into a motion, stored as one unit.

Store layout under a prefix such as `models/<name>`:
  <prefix>/vqvae.safetensors     VQ-VAE state dict (keys as in the released checkpoint, without `vae.`)
  <prefix>/norm.safetensors      `mean` and `std` (input_dim,) of the HumanML3D features
  <prefix>/lm/<file>             the MotionLM directory (T5 config + weights, tokenizer, motionlm.json)
  <prefix>/bundle.json           written last: format, VQ-VAE config, sha256 of every file, free-form info
A bundle without bundle.json is incomplete (an interrupted save) and does not load.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from atom.mgpt.lm import LMError, MotionLM
from atom.mgpt.tokenizer import NUM_CODES
from atom.mgpt.vqvae import VQVAE, VQVAEConfig

BUNDLE_FORMAT = 1
MANIFEST = "bundle.json"


class BundleError(ValueError):
    """A bundle is missing, incomplete or corrupt; the message names the file and what to do."""


@dataclass
class ModelBundle:
    vqvae: VQVAE
    lm: MotionLM
    mean: np.ndarray
    std: np.ndarray
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        dim = self.vqvae.config.input_dim
        if self.vqvae.config.num_codes > NUM_CODES:
            raise BundleError(
                f"the VQ-VAE has {self.vqvae.config.num_codes} codes but the motion vocabulary "
                f"has {NUM_CODES} code tokens; use at most {NUM_CODES} codes"
            )
        self.mean = np.asarray(self.mean, dtype=np.float32).reshape(-1)
        self.std = np.asarray(self.std, dtype=np.float32).reshape(-1)
        for name, arr in (("mean", self.mean), ("std", self.std)):
            if arr.shape != (dim,):
                raise BundleError(f"{name} has shape {arr.shape}, expected ({dim},) to match the VQ-VAE input size")
            if not np.all(np.isfinite(arr)):
                raise BundleError(f"{name} contains NaN or infinite values")
        if np.any(self.std <= 0):
            raise BundleError(f"std has {int(np.sum(self.std <= 0))} non-positive entries; every feature needs a std > 0")
        self.vqvae.eval()

    def normalize(self, features: np.ndarray | torch.Tensor):
        if isinstance(features, torch.Tensor):
            return (features - torch.as_tensor(self.mean, device=features.device)) / torch.as_tensor(self.std, device=features.device)
        return (np.asarray(features, np.float32) - self.mean) / self.std

    def denormalize(self, features_norm: np.ndarray | torch.Tensor):
        if isinstance(features_norm, torch.Tensor):
            device = features_norm.device
            return features_norm * torch.as_tensor(self.std, device=device) + torch.as_tensor(self.mean, device=device)
        return np.asarray(features_norm, np.float32) * self.std + self.mean

    def to(self, device) -> "ModelBundle":
        self.vqvae.to(device)
        self.lm.to(device)
        return self


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_bundle(store, prefix: str, bundle: ModelBundle) -> dict:
    """Write `bundle` under `prefix`; returns the manifest. Overwrites an existing bundle there."""
    prefix = prefix.rstrip("/")
    files: dict[str, str] = {}

    def put(rel: str, data: bytes) -> None:
        store.put_bytes(f"{prefix}/{rel}", data)
        files[rel] = _sha(data)

    # Drop the manifest first: a save interrupted half-way must not look like a complete bundle.
    store.delete(f"{prefix}/{MANIFEST}")
    sd = {k: v.detach().cpu().contiguous() for k, v in bundle.vqvae.state_dict().items()}
    put("vqvae.safetensors", st_save(sd))
    put("norm.safetensors", st_save({"mean": torch.from_numpy(bundle.mean.copy()), "std": torch.from_numpy(bundle.std.copy())}))
    with tempfile.TemporaryDirectory(prefix="atom-lm-") as tmp:
        bundle.lm.save(tmp)
        for path in sorted(Path(tmp).rglob("*")):
            if path.is_file():
                put(f"lm/{path.relative_to(tmp).as_posix()}", path.read_bytes())
    for key in store.list(f"{prefix}/lm/"):  # files of an older bundle that this one does not have
        if key[len(prefix) + 1 :] not in files:
            store.delete(key)
    manifest = {"format": BUNDLE_FORMAT, "vqvae": bundle.vqvae.config.to_dict(), "files": files, "info": bundle.info}
    store.put_json(f"{prefix}/{MANIFEST}", manifest)
    return manifest


def bundle_exists(store, prefix: str) -> bool:
    return store.exists(f"{prefix.rstrip('/')}/{MANIFEST}")


def read_manifest(store, prefix: str) -> dict:
    from atom.store import ArtifactNotFound, StoreError

    prefix = prefix.rstrip("/")
    try:
        manifest = store.get_json(f"{prefix}/{MANIFEST}")
    except ArtifactNotFound:
        raise BundleError(
            f"no model bundle at {prefix!r} in {getattr(store, 'url', store)} ({MANIFEST} missing): "
            "pretrain one (atomctl pretrain) or check the model name"
        ) from None
    except StoreError as exc:
        raise BundleError(f"{prefix}/{MANIFEST} is unreadable ({exc}); save the bundle again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT or not isinstance(manifest.get("files"), dict):
        raise BundleError(f"{prefix}/{MANIFEST} is not a format-{BUNDLE_FORMAT} bundle manifest; save the bundle again")
    return manifest


def load_bundle(store, prefix: str, device: str | torch.device = "cpu") -> ModelBundle:
    """Load the bundle under `prefix`, checking every file against the manifest's sha256."""
    from atom.store import ArtifactNotFound

    prefix = prefix.rstrip("/")
    manifest = read_manifest(store, prefix)
    files: dict[str, str] = manifest["files"]
    for required in ("vqvae.safetensors", "norm.safetensors"):
        if required not in files:
            raise BundleError(f"bundle {prefix!r}: manifest lists no {required}; save the bundle again")

    def get(rel: str) -> bytes:
        try:
            data = store.get_bytes(f"{prefix}/{rel}")
        except ArtifactNotFound:
            raise BundleError(f"bundle {prefix!r} is incomplete: {rel} is missing; save the bundle again") from None
        if _sha(data) != files[rel]:
            raise BundleError(f"bundle {prefix!r}: {rel} is corrupt (sha256 differs from the manifest); save the bundle again")
        return data

    try:
        config = VQVAEConfig.from_dict(manifest["vqvae"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"bundle {prefix!r}: bad VQ-VAE config in {MANIFEST} ({exc})") from None
    vqvae = VQVAE(config)
    try:
        sd = st_load(get("vqvae.safetensors"))
        vqvae.load_state_dict(sd, strict=True)
        norm = st_load(get("norm.safetensors"))
        mean, std = norm["mean"].numpy(), norm["std"].numpy()
    except BundleError:
        raise
    except Exception as exc:  # safetensors parse errors, key/shape mismatches
        raise BundleError(f"bundle {prefix!r}: weights do not load ({type(exc).__name__}: {exc}); save the bundle again") from None
    lm_files = sorted(rel for rel in files if rel.startswith("lm/"))
    if not lm_files:
        raise BundleError(f"bundle {prefix!r} has no language model files (lm/...); save the bundle again")
    with tempfile.TemporaryDirectory(prefix="atom-lm-") as tmp:
        for rel in lm_files:
            dest = Path(tmp) / rel[3:]
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(get(rel))
        try:
            lm = MotionLM.load(tmp, dropout_rate=0.0)
        except LMError as exc:
            raise BundleError(f"bundle {prefix!r}: {exc}") from None
    if len(lm.tokenizer) != lm.model.get_input_embeddings().weight.shape[0]:
        raise BundleError(f"bundle {prefix!r}: tokenizer and model vocabularies differ")
    bundle = ModelBundle(vqvae=vqvae, lm=lm, mean=mean, std=std, info=dict(manifest.get("info") or {}))
    return bundle.to(device)
