"""Load the released MotionGPT-base checkpoint (`motiongpt_s3_h3d.tar`) and import it into the store.

The file is a PyTorch Lightning checkpoint: weights under `state_dict` with prefixes `vae.` (the
VQ-VAE) and `lm.language_model.` (the T5), evaluator copies under `metrics.*` and loss buffers under
`_losses.*` (ignored), plus the training config as OmegaConf objects. It is read by
`atom.safe_pickle.load_torch_checkpoint`, which never runs what the file names.

MotionGPT needs three more things beside the weights, and an import records each with its hash:
the flan-t5-base directory (config and tokenizer), and the mean/std it de-normalises motions with.
Those are the VQ-VAE's `meta/mean.npy` and `meta/std.npy` from the T2M release
(`deps/t2m/t2m/VQVAEV3_CB1024_CMT_H1024_NRES3/meta/` in MotionGPT's layout), not HumanML3D's
`Mean.npy`/`Std.npy`: the std there is rescaled per feature group, so the dataset's files would
scale every generated motion wrongly. They are never guessed: given, or found in that layout next
to the checkpoint, or the import stops and says which flag to pass.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from atom.mgpt.bundle import ModelBundle
from atom.mgpt.lm import DEFAULT_TEMPLATE, MotionLM, set_dropout, untie_lm_head
from atom.mgpt.tokenizer import HFTokenizerAdapter, NUM_MOTION_TOKENS, TokenizerError
from atom.mgpt.vqvae import VQVAE, VQVAEConfig
from atom.safe_pickle import Opaque, UnreadableFileError, UnsafeFileError, load_torch_checkpoint

VAE_PREFIX = "vae."
LM_PREFIX = "lm.language_model."
IGNORED_PREFIXES = ("metrics.", "_losses.")
# Where MotionGPT's code reads its normalisation and its T5 (relative to its `deps/` folder).
MOTIONGPT_META = Path("t2m") / "t2m" / "VQVAEV3_CB1024_CMT_H1024_NRES3" / "meta"
MOTIONGPT_T5 = Path("flan-t5-base")


class CheckpointError(ValueError):
    """The checkpoint cannot be used; the message names the file/key and what to do."""


class UnsafePickleError(CheckpointError):
    """The pickle asks for a global that could run code; it was refused, nothing was executed."""


__all__ = ["CheckpointError", "Opaque", "UnsafePickleError"]


def safe_load(path: str | Path) -> Any:
    """The checkpoint's object tree, through the safe loader (never executes pickled code)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; download motiongpt_s3_h3d.tar and give its path")
    try:
        return load_torch_checkpoint(path)
    except UnsafeFileError as exc:
        raise UnsafePickleError(str(exc)) from None
    except UnreadableFileError as exc:
        raise CheckpointError(str(exc)) from None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    obj = safe_load(path)
    sd = obj.get("state_dict") if isinstance(obj, dict) else None
    if sd is None and isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        sd = obj  # a bare state dict
    if not isinstance(sd, dict):
        raise CheckpointError(
            f"{path}: no 'state_dict' in the checkpoint (top-level keys: "
            f"{sorted(map(str, obj))[:10] if isinstance(obj, dict) else type(obj).__name__})"
        )
    return {str(k): v for k, v in sd.items() if isinstance(v, torch.Tensor)}


# -- mapping into our modules ------------------------------------------------------------------------


def split_state_dict(sd: dict[str, torch.Tensor]) -> tuple[dict, dict, list[str]]:
    vae, lm, other = {}, {}, []
    for k, v in sd.items():
        if k.startswith(VAE_PREFIX):
            vae[k[len(VAE_PREFIX) :]] = v
        elif k.startswith(LM_PREFIX):
            lm[k[len(LM_PREFIX) :]] = v
        elif not k.startswith(IGNORED_PREFIXES):
            other.append(k)
    return vae, lm, other


def _load_checked(
    module: torch.nn.Module, sd: dict, prefix: str, what: str, hint: str, optional: tuple[str, ...] = (), ignorable: tuple[str, ...] = ()
) -> None:
    expected = module.state_dict()
    for k, v in expected.items():
        if k in sd and tuple(sd[k].shape) != tuple(v.shape):
            raise CheckpointError(
                f"shape mismatch for {prefix}{k}: checkpoint has {list(sd[k].shape)}, the {what} expects {list(v.shape)}. {hint}"
            )
    missing = [k for k in expected if k not in sd and k not in optional]
    if missing:
        raise CheckpointError(f"the checkpoint lacks {len(missing)} {what} weights, e.g. {prefix}{missing[0]}. {hint}")
    unexpected = [k for k in sd if k not in expected and k not in ignorable]
    if unexpected:
        raise CheckpointError(f"the checkpoint has {len(unexpected)} weights the {what} does not, e.g. {prefix}{unexpected[0]}. {hint}")
    module.load_state_dict({k: v for k, v in sd.items() if k in expected}, strict=False)


def build_vqvae(vae_sd: dict, config: VQVAEConfig | None = None) -> VQVAE:
    config = config or VQVAEConfig()
    vqvae = VQVAE(config)
    first = vae_sd.get("encoder.model.0.weight")
    hint = "MotionGPT's VQ-VAE has 512 codes of dim 512 over 263 HumanML3D features; a different size needs a matching VQVAEConfig"
    if first is not None and first.ndim == 3 and first.shape[1] != config.input_dim:
        hint = (
            f"the checkpoint was trained on {first.shape[1]}-dim features, not {config.input_dim} "
            "(HumanML3D has 263, KIT-ML 251): use the checkpoint trained on this dataset"
        )
    _load_checked(vqvae, vae_sd, VAE_PREFIX, "VQ-VAE", hint)
    return vqvae.eval()


def build_lm(lm_sd: dict, t5_dir: str | Path, template: str | None = None) -> MotionLM:
    from transformers import T5Config, T5ForConditionalGeneration

    t5_dir = Path(t5_dir)
    if not (t5_dir / "config.json").is_file():
        raise CheckpointError(
            f"{t5_dir} has no config.json: give the local flan-t5-base directory (config.json and tokenizer files from google/flan-t5-base)"
        )
    try:
        tokenizer = HFTokenizerAdapter.from_pretrained(t5_dir)
    except TokenizerError as exc:
        raise CheckpointError(str(exc)) from None
    config = T5Config.from_pretrained(str(t5_dir), local_files_only=True)
    untied = not getattr(config, "scale_decoder_outputs", False)  # config.json said tie_word_embeddings: false
    emb = lm_sd.get("shared.weight")
    if emb is None:
        raise CheckpointError(f"the checkpoint has no {LM_PREFIX}shared.weight: not a MotionGPT checkpoint")
    if emb.shape[0] != len(tokenizer):
        raise CheckpointError(
            f"vocabulary mismatch for {LM_PREFIX}shared.weight: checkpoint has {list(emb.shape)}, the tokenizer in "
            f"{t5_dir} with the {NUM_MOTION_TOKENS} motion tokens gives [{len(tokenizer)}, {config.d_model}]. "
            "Use the flan-t5-base tokenizer MotionGPT was trained with (32100 tokens + 515 motion tokens)"
        )
    config.vocab_size = len(tokenizer)
    config.dropout_rate = 0.0
    config.decoder_start_token_id = tokenizer.pad_id
    model = T5ForConditionalGeneration(config)
    if untied:
        untie_lm_head(model)
    tied = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight") + (() if untied else ("lm_head.weight",))
    _load_checked(
        model,
        lm_sd,
        LM_PREFIX,
        "T5 built from " + str(t5_dir / "config.json"),
        "The language model must be flan-t5-base (d_model 768, 12+12 layers) as in MotionGPT-base",
        optional=tied,
        ignorable=("decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",),
    )
    set_dropout(model, 0.0)
    return MotionLM(model, tokenizer, template=template or DEFAULT_TEMPLATE)


def infer_vq_config(vae_sd: dict) -> VQVAEConfig:
    """The VQ-VAE's size read off its weights (MotionGPT-base: 263 -> 512 wide, 512 codes of 512)."""
    try:
        first = vae_sd["encoder.model.0.weight"]
        codebook = vae_sd["quantizer.codebook"]
    except KeyError as exc:
        raise CheckpointError(f"the checkpoint has no {VAE_PREFIX}{exc.args[0]}: not a MotionGPT VQ-VAE") from None
    down = sum(
        1 for k in vae_sd if k.startswith("encoder.model.") and k.endswith(".0.weight") and vae_sd[k].ndim == 3 and vae_sd[k].shape[-1] == 4
    )
    depth = sum(1 for k in vae_sd if k.startswith("encoder.model.2.1.model.") and k.endswith(".conv1.weight"))
    if first.ndim != 3 or codebook.ndim != 2 or down < 1 or depth < 1:
        raise CheckpointError(
            "the VQ-VAE weights do not have MotionGPT's layout (encoder.model.0 [width, 263, 3], "
            "quantizer.codebook [codes, dim], strided stages under encoder.model.2..)"
        )
    return VQVAEConfig(
        input_dim=int(first.shape[1]),
        width=int(first.shape[0]),
        code_dim=int(codebook.shape[1]),
        num_codes=int(codebook.shape[0]),
        down_t=down,
        res_depth=depth,
    )


def _read_norm(value, name: str) -> np.ndarray:
    if isinstance(value, (str, Path)):
        try:
            value = np.load(value, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read {name} from {value} ({exc}); give MotionGPT's meta/{name}.npy (--mean-std)") from None
    return np.asarray(value, dtype=np.float32)


def load_motiongpt(
    checkpoint: str | Path, t5_dir: str | Path, mean, std, vq_config: VQVAEConfig | None = None, device: str | torch.device = "cpu"
) -> ModelBundle:
    """The released MotionGPT checkpoint + a local flan-t5-base directory + MotionGPT's mean/std
    (arrays or .npy paths) -> a ModelBundle ready for sampling. The VQ-VAE's size is read off the
    weights unless `vq_config` is given."""
    sd = read_state_dict(checkpoint)
    vae_sd, lm_sd, other = split_state_dict(sd)
    if not vae_sd or not lm_sd:
        raise CheckpointError(
            f"{checkpoint}: expected weights under '{VAE_PREFIX}' and '{LM_PREFIX}', found "
            f"{len(vae_sd)} and {len(lm_sd)}; is this MotionGPT's text-to-motion checkpoint?"
        )
    vqvae = build_vqvae(vae_sd, vq_config or infer_vq_config(vae_sd))
    level = logging.getLogger("transformers").level
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        lm = build_lm(lm_sd, t5_dir)
    finally:
        logging.getLogger("transformers").setLevel(level)
    info = {
        "source": "motiongpt-checkpoint",
        "checkpoint": Path(checkpoint).name,
        "decoding": "motiongpt",
        "ignored_keys": len(sd) - len(vae_sd) - len(lm_sd) - len(other),
        "unknown_keys": other[:20],
    }
    bundle = ModelBundle(vqvae=vqvae, lm=lm, mean=_read_norm(mean, "mean"), std=_read_norm(std, "std"), info=info)
    return bundle.to(device)


# -- importing into the store ------------------------------------------------------------------------


@dataclass(frozen=True)
class MotionGPTAssets:
    """The files an import reads, resolved to paths."""

    checkpoint: Path
    t5_dir: Path
    mean: Path
    std: Path


def _find_in_deps(start: Path, rel: Path, levels: int = 4) -> Path | None:
    """`<ancestor>/deps/<rel>` for the checkpoint's folder and its parents (MotionGPT keeps
    checkpoints/ and deps/ side by side)."""
    for folder in [start, *start.parents][:levels]:
        candidate = folder / "deps" / rel
        if candidate.exists():
            return candidate
    return None


def _meta_dir(given: Path) -> Path:
    """A --mean-std argument -> the folder holding mean.npy and std.npy. Accepts that folder, or
    MotionGPT's deps/, deps/t2m/ or deps/t2m/t2m/ above it."""
    for candidate in (
        given,
        given / MOTIONGPT_META,
        given / Path(*MOTIONGPT_META.parts[1:]),
        given / Path(*MOTIONGPT_META.parts[2:]),
        given / "meta",
    ):
        if (candidate / "mean.npy").is_file() and (candidate / "std.npy").is_file():
            return candidate
    if (given / "Mean.npy").is_file():
        raise CheckpointError(
            f"{given} holds HumanML3D's Mean.npy/Std.npy, but MotionGPT de-normalises with its VQ-VAE's meta/mean.npy "
            f"and meta/std.npy (deps/{MOTIONGPT_META.as_posix()}); the dataset's files would scale every motion "
            "wrongly. Give that meta folder with --mean-std"
        )
    raise CheckpointError(
        f"{given} has no mean.npy/std.npy; give MotionGPT's deps/{MOTIONGPT_META.as_posix()} folder (or deps/ itself) with --mean-std"
    )


def find_assets(checkpoint: str | Path, t5_dir: str | Path = "", mean_std: str | Path = "") -> MotionGPTAssets:
    """Resolve the files an import needs. The T5 folder and the mean/std may be omitted when they
    sit in MotionGPT's deps/ layout next to the checkpoint; nothing else is ever substituted."""
    ckpt = Path(checkpoint).expanduser()
    if not ckpt.is_file():
        raise CheckpointError(f"checkpoint {ckpt} does not exist; download motiongpt_s3_h3d.tar and give its path")
    if t5_dir:
        t5 = Path(t5_dir).expanduser()
    else:
        found = _find_in_deps(ckpt.parent, MOTIONGPT_T5)
        if found is None:
            raise CheckpointError(
                f"no flan-t5-base folder given and none at deps/{MOTIONGPT_T5} next to {ckpt}; "
                "pass --t5-dir (google/flan-t5-base: config.json and tokenizer files)"
            )
        t5 = found
    if not (t5 / "config.json").is_file():
        raise CheckpointError(
            f"{t5} has no config.json: give the local flan-t5-base directory (config.json and tokenizer files from google/flan-t5-base)"
        )
    if mean_std:
        meta = _meta_dir(Path(mean_std).expanduser())
    else:
        found = _find_in_deps(ckpt.parent, MOTIONGPT_META)
        if found is None:
            raise CheckpointError(
                f"MotionGPT's normalisation files were not given and are not at deps/{MOTIONGPT_META.as_posix()} "
                f"next to {ckpt}; pass --mean-std with that folder (it comes with MotionGPT's "
                "prepare/download_t2m_evaluators.sh). HumanML3D's own Mean.npy/Std.npy are not the same files"
            )
        meta = _meta_dir(found)
    return MotionGPTAssets(ckpt, t5, meta / "mean.npy", meta / "std.npy")


def asset_record(assets: MotionGPTAssets) -> dict:
    """What an import read: each file's name, size and sha256 (the T5 folder as one hash)."""
    from atom.store.filehash import file_sha256, tree_sha256

    rec = {
        role: {"path": str(p), "bytes": p.stat().st_size, "sha256": file_sha256(p)}
        for role, p in (("checkpoint", assets.checkpoint), ("mean", assets.mean), ("std", assets.std))
    }
    rec["t5_dir"] = {"path": str(assets.t5_dir), "sha256": tree_sha256(assets.t5_dir)}
    return rec


def import_prefix(record: dict) -> str:
    """The store prefix of an import: keyed by the content of every file it read."""
    key = "|".join(record[r]["sha256"] for r in ("checkpoint", "t5_dir", "mean", "std"))
    return "models/motiongpt-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def import_motiongpt_checkpoint(store, assets: MotionGPTAssets, record: dict | None = None) -> str:
    """Load the released files and save them as a model bundle under a content-keyed prefix (once:
    an existing bundle there is reused). Returns the prefix."""
    from atom.mgpt.bundle import bundle_exists, save_bundle

    record = record or asset_record(assets)
    prefix = import_prefix(record)
    if bundle_exists(store, prefix):
        return prefix
    bundle = load_motiongpt(assets.checkpoint, assets.t5_dir, assets.mean, assets.std)
    # Names only: the local paths differ from machine to machine and are not the model's identity.
    bundle.info["assets"] = {
        role: {("name" if k == "path" else k): (Path(v).name if k == "path" else v) for k, v in r.items()} for role, r in record.items()
    }
    bundle.info["normalization"] = f"MotionGPT VQ-VAE meta ({MOTIONGPT_META.as_posix()})"
    save_bundle(store, prefix, bundle)
    return prefix
