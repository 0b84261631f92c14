"""Load the released MotionGPT-base checkpoint (`motiongpt_s3_h3d.tar`) safely.

The file is a PyTorch Lightning checkpoint: weights under `state_dict` with prefixes `vae.` (the
VQ-VAE) and `lm.language_model.` (the T5), evaluator copies under `metrics.*` and loss buffers under
`_losses.*` (ignored), plus the training config as OmegaConf objects. Because of those objects
`torch.load(weights_only=True)` refuses the file, and `weights_only=False` would run whatever the
pickle names. This module unpickles with a restricted unpickler instead:
- an allow-list of globals is resolved for real: torch's tensor/parameter rebuild functions, dtypes,
  torch.Size, collections.OrderedDict, plain builtin containers and a few numpy array helpers;
- globals from modules that can run commands or import code (os, subprocess, builtins.eval, ...) make
  the load fail with a CheckpointError;
- any other global (OmegaConf's classes, Lightning's, a project's own) becomes an inert placeholder
  class: its module is never imported and none of its code runs; the arguments are kept for display.
"""

from __future__ import annotations

import builtins
import collections
import io
import logging
import pickle
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch

from atom.mgpt.bundle import ModelBundle
from atom.mgpt.lm import MotionLM, set_dropout, untie_lm_head
from atom.mgpt.tokenizer import HFTokenizerAdapter, NUM_MOTION_TOKENS, TokenizerError
from atom.mgpt.vqvae import VQVAE, VQVAEConfig

VAE_PREFIX = "vae."
LM_PREFIX = "lm.language_model."
IGNORED_PREFIXES = ("metrics.", "_losses.")


class CheckpointError(ValueError):
    """The checkpoint cannot be used; the message names the file/key and what to do."""


class UnsafePickleError(CheckpointError):
    """The pickle asks for a global that could run code; it was refused, nothing was executed."""


# -- the restricted unpickler ------------------------------------------------------------------------

def _allowed_globals() -> dict[tuple[str, str], Any]:
    import torch._tensor
    import torch._utils

    allowed: dict[tuple[str, str], Any] = {}
    for name in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                 "_rebuild_parameter_with_state"):
        if hasattr(torch._utils, name):
            allowed[("torch._utils", name)] = getattr(torch._utils, name)
    allowed[("torch._tensor", "_rebuild_from_type_v2")] = _safe_rebuild_from_type_v2
    allowed[("torch", "Size")] = torch.Size
    allowed[("torch", "Tensor")] = torch.Tensor
    allowed[("torch.nn.parameter", "Parameter")] = torch.nn.Parameter
    allowed[("torch", "device")] = torch.device
    allowed[("collections", "OrderedDict")] = collections.OrderedDict
    for name in ("set", "frozenset", "list", "dict", "tuple", "int", "float", "complex", "bool", "str", "bytes",
                 "bytearray", "slice"):
        allowed[("builtins", name)] = getattr(builtins, name)
    allowed[("_codecs", "encode")] = _latin1_encode  # protocol-2 pickles store bytes this way
    allowed[("copyreg", "_reconstructor")] = _safe_reconstructor
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = _safe_np_reconstruct
        allowed[(mod, "scalar")] = _safe_np_scalar
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    return allowed


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    if encoding not in ("latin1", "latin-1", "latin_1"):
        raise UnsafePickleError(f"pickle asks to encode with codec {encoding!r}; only latin1 is allowed")
    return text.encode("latin1")


def _safe_np_reconstruct(subtype, shape, dtype):
    if subtype is not np.ndarray:
        raise UnsafePickleError(f"numpy array subtype {subtype!r} is not allowed")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _safe_np_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafePickleError("numpy object scalars are not allowed")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _safe_reconstructor(cls, base, state):
    if isinstance(cls, type) and issubclass(cls, Opaque):
        obj = cls.__new__(cls)
        obj._opaque_args = (state,)
        return obj
    if cls in (collections.OrderedDict, dict, list, set) and base in (object, dict, list, set):
        return cls()
    raise UnsafePickleError(f"copyreg._reconstructor for {cls!r} is not allowed")


def _safe_rebuild_from_type_v2(func, new_type, args, state):
    if new_type not in (torch.Tensor, torch.nn.Parameter):
        raise UnsafePickleError(f"tensor subclass {new_type!r} is not allowed")
    import torch._tensor

    return torch._tensor._rebuild_from_type_v2(func, new_type, args, state)


# Modules whose globals can run commands, import or evaluate code. A pickle naming one is refused
# outright (as a placeholder it would be harmless, but such a file is not a checkpoint).
_DENIED_MODULES = ("os", "posix", "nt", "subprocess", "sys", "shutil", "socket", "importlib", "runpy", "pickle",
                   "_pickle", "marshal", "ctypes", "code", "codeop", "pty", "webbrowser", "multiprocessing",
                   "signal", "io", "_io", "types", "inspect", "builtins", "__builtin__", "operator", "functools",
                   "pdb", "timeit", "platform", "tempfile", "glob", "pathlib", "urllib", "http", "requests",
                   "asyncio", "threading", "_thread", "torch.hub", "torch.jit", "torch.package", "torch.ops")


class Opaque:
    """Stand-in for a class the checkpoint names but we do not trust. Records what the pickle
    passed to it; has no behaviour."""

    _opaque_global = ("?", "?")

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj._opaque_args = args
        obj._opaque_state = None
        obj._opaque_items = []
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self._opaque_state = state

    def __setitem__(self, key, value):
        self._opaque_items.append((key, value))

    def append(self, value):
        self._opaque_items.append(value)

    def extend(self, values):
        self._opaque_items.extend(values)

    def __repr__(self) -> str:
        mod, name = self._opaque_global
        return f"<opaque {mod}.{name}>"


class RestrictedUnpickler(pickle.Unpickler):
    _allowed: dict[tuple[str, str], Any] | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.placeholders: dict[tuple[str, str], type] = {}

    def find_class(self, module: str, name: str):
        if RestrictedUnpickler._allowed is None:
            RestrictedUnpickler._allowed = _allowed_globals()
        key = (module, name)
        if key in RestrictedUnpickler._allowed:
            return RestrictedUnpickler._allowed[key]
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        root = module.split(".")[0]
        if module in _DENIED_MODULES or root in _DENIED_MODULES or any(module.startswith(m + ".") for m in _DENIED_MODULES):
            raise UnsafePickleError(
                f"refusing to load: the pickle asks for {module}.{name}, which can run code. "
                "This is not a MotionGPT checkpoint, or it has been tampered with; nothing was executed"
            )
        if root == "torch":
            # Other torch globals (modules, optimisers, ...) are not needed for weights.
            raise UnsafePickleError(f"refusing torch global {module}.{name}: only tensors are loaded from checkpoints")
        if key not in self.placeholders:
            self.placeholders[key] = type(name, (Opaque,), {"_opaque_global": key, "__module__": "atom.mgpt.opaque"})
        return self.placeholders[key]


class _RestrictedPickleModule(types.ModuleType):
    Unpickler = RestrictedUnpickler

    @staticmethod
    def load(f, **kwargs):
        return RestrictedUnpickler(f, **kwargs).load()

    @staticmethod
    def loads(data, **kwargs):
        return RestrictedUnpickler(io.BytesIO(data), **kwargs).load()


restricted_pickle = _RestrictedPickleModule("atom_restricted_pickle")


def safe_load(path: str | Path) -> Any:
    """torch.load through the restricted unpickler (never executes pickled code)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; download motiongpt_s3_h3d.tar and give its path")
    try:
        return torch.load(str(path), map_location="cpu", pickle_module=restricted_pickle, weights_only=False)
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, KeyError) as exc:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})") from None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    obj = safe_load(path)
    sd = obj.get("state_dict") if isinstance(obj, dict) else None
    if sd is None and isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        sd = obj  # a bare state dict
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path}: no 'state_dict' in the checkpoint (top-level keys: "
                              f"{sorted(map(str, obj))[:10] if isinstance(obj, dict) else type(obj).__name__})")
    return {str(k): v for k, v in sd.items() if isinstance(v, torch.Tensor)}


# -- mapping into our modules ------------------------------------------------------------------------

def split_state_dict(sd: dict[str, torch.Tensor]) -> tuple[dict, dict, list[str]]:
    vae, lm, other = {}, {}, []
    for k, v in sd.items():
        if k.startswith(VAE_PREFIX):
            vae[k[len(VAE_PREFIX):]] = v
        elif k.startswith(LM_PREFIX):
            lm[k[len(LM_PREFIX):]] = v
        elif not k.startswith(IGNORED_PREFIXES):
            other.append(k)
    return vae, lm, other


def _load_checked(module: torch.nn.Module, sd: dict, prefix: str, what: str, hint: str,
                  optional: tuple[str, ...] = (), ignorable: tuple[str, ...] = ()) -> None:
    expected = module.state_dict()
    for k, v in expected.items():
        if k in sd and tuple(sd[k].shape) != tuple(v.shape):
            raise CheckpointError(
                f"shape mismatch for {prefix}{k}: checkpoint has {list(sd[k].shape)}, the {what} expects "
                f"{list(v.shape)}. {hint}"
            )
    missing = [k for k in expected if k not in sd and k not in optional]
    if missing:
        raise CheckpointError(f"the checkpoint lacks {len(missing)} {what} weights, e.g. {prefix}{missing[0]}. {hint}")
    unexpected = [k for k in sd if k not in expected and k not in ignorable]
    if unexpected:
        raise CheckpointError(f"the checkpoint has {len(unexpected)} weights the {what} does not, e.g. "
                              f"{prefix}{unexpected[0]}. {hint}")
    module.load_state_dict({k: v for k, v in sd.items() if k in expected}, strict=False)


def build_vqvae(vae_sd: dict, config: VQVAEConfig | None = None) -> VQVAE:
    config = config or VQVAEConfig()
    vqvae = VQVAE(config)
    first = vae_sd.get("encoder.model.0.weight")
    hint = ("MotionGPT's VQ-VAE has 512 codes of dim 512 over 263 HumanML3D features; a different size "
            "needs a matching VQVAEConfig")
    if first is not None and first.ndim == 3 and first.shape[1] != config.input_dim:
        hint = (f"the checkpoint was trained on {first.shape[1]}-dim features, not {config.input_dim} "
                "(HumanML3D has 263, KIT-ML 251): use the checkpoint trained on this dataset")
    _load_checked(vqvae, vae_sd, VAE_PREFIX, "VQ-VAE", hint)
    return vqvae.eval()


def build_lm(lm_sd: dict, t5_dir: str | Path, template: str | None = None) -> MotionLM:
    from transformers import T5Config, T5ForConditionalGeneration

    t5_dir = Path(t5_dir)
    if not (t5_dir / "config.json").is_file():
        raise CheckpointError(f"{t5_dir} has no config.json: give the local flan-t5-base directory "
                              "(config.json and tokenizer files from google/flan-t5-base)")
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
    _load_checked(model, lm_sd, LM_PREFIX, "T5 built from " + str(t5_dir / "config.json"),
                  "The language model must be flan-t5-base (d_model 768, 12+12 layers) as in MotionGPT-base",
                  optional=tied, ignorable=("decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",))
    set_dropout(model, 0.0)
    return MotionLM(model, tokenizer, **({"template": template} if template else {}))


def _read_norm(value, name: str) -> np.ndarray:
    if isinstance(value, (str, Path)):
        try:
            value = np.load(value, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read {name} from {value} ({exc}); give HumanML3D's {name.title()}.npy") from None
    return np.asarray(value, dtype=np.float32)


def load_motiongpt(checkpoint: str | Path, t5_dir: str | Path, mean, std,
                   vq_config: VQVAEConfig | None = None, device: str | torch.device = "cpu") -> ModelBundle:
    """The released MotionGPT checkpoint + a local flan-t5-base directory + HumanML3D Mean/Std
    (arrays or .npy paths) -> a ModelBundle ready for sampling."""
    sd = read_state_dict(checkpoint)
    vae_sd, lm_sd, other = split_state_dict(sd)
    if not vae_sd or not lm_sd:
        raise CheckpointError(f"{checkpoint}: expected weights under '{VAE_PREFIX}' and '{LM_PREFIX}', found "
                              f"{len(vae_sd)} and {len(lm_sd)}; is this MotionGPT's text-to-motion checkpoint?")
    vqvae = build_vqvae(vae_sd, vq_config)
    level = logging.getLogger("transformers").level
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        lm = build_lm(lm_sd, t5_dir)
    finally:
        logging.getLogger("transformers").setLevel(level)
    info = {"source": "motiongpt-checkpoint", "checkpoint": Path(checkpoint).name,
            "ignored_keys": len(sd) - len(vae_sd) - len(lm_sd) - len(other), "unknown_keys": other[:20]}
    bundle = ModelBundle(vqvae=vqvae, lm=lm, mean=_read_norm(mean, "mean"), std=_read_norm(std, "std"), info=info)
    return bundle.to(device)
