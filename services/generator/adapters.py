"""Serve a base model with or without one of several LoRA adapters, chosen per call.

Adapters are PEFT directories in the store under `models/<run>/adapter/` (adapter_config.json +
adapter_model.safetensors, as the trainer writes them). The first adapter wraps the base T5 in a
PEFT model once; further adapters are added to that same model (`load_adapter`) and switched with
`set_adapter`; the base alone runs under `disable_adapter()`. Nothing reloads the base weights. At
most `capacity` adapters stay loaded (least recently used leaves first).

Switching mutates the shared model, so a pool serialises its calls with a lock: `use()` holds it
for the whole sampling call.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from atom.mgpt.bundle import ModelBundle, load_bundle

if TYPE_CHECKING:
    from peft import PeftModel

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


class AdapterError(ValueError):
    """An adapter is missing, malformed or does not fit the base model; the message says what to do."""


def _norm(prefix: str) -> str:
    prefix = (prefix or "").strip().strip("/")
    if not prefix:
        raise AdapterError("empty adapter prefix; give e.g. 'models/<run>/adapter'")
    return prefix


def fetch_adapter(store, prefix: str, directory: str | Path) -> Path:
    """Copy the adapter files under `prefix` from the store into `directory`, checking them."""
    from atom.store import ArtifactNotFound

    prefix = _norm(prefix)
    directory = Path(directory)
    keys = store.list(prefix + "/")
    names = {k[len(prefix) + 1 :] for k in keys}
    if ADAPTER_CONFIG not in names:
        raise AdapterError(
            f"no LoRA adapter at {prefix!r} ({ADAPTER_CONFIG} missing): check the run name, or wait until its training job has succeeded"
        )
    if ADAPTER_WEIGHTS not in names:
        hint = " (a pickled adapter_model.bin is not loaded: save adapters as safetensors)" if "adapter_model.bin" in names else ""
        raise AdapterError(f"adapter {prefix!r} has no {ADAPTER_WEIGHTS}{hint}")
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        try:
            data = store.get_bytes(f"{prefix}/{name}")
        except ArtifactNotFound:
            raise AdapterError(f"adapter {prefix!r}: {name} disappeared while loading; retry") from None
        (directory / name).write_bytes(data)
    try:
        cfg = json.loads((directory / ADAPTER_CONFIG).read_text())
    except ValueError as exc:
        raise AdapterError(f"adapter {prefix!r}: {ADAPTER_CONFIG} is not valid JSON ({exc})") from None
    if not isinstance(cfg, dict) or str(cfg.get("peft_type", "")).upper() != "LORA":
        raise AdapterError(f"adapter {prefix!r} is not a LoRA adapter (peft_type {cfg.get('peft_type')!r})")
    return directory


class AdapterPool:
    """One base bundle plus an LRU of LoRA adapters on top of it."""

    def __init__(self, bundle: ModelBundle, store, capacity: int = 4, base_prefix: str = ""):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.bundle = bundle
        self.store = store
        self.capacity = capacity
        self.base_prefix = base_prefix.strip("/")
        self.version = ""  # the bundle's content id, when the cache knows it
        self._peft: PeftModel | None = None  # wraps the base model while any adapter is loaded
        self._names: OrderedDict[str, str] = OrderedDict()  # adapter prefix -> PEFT adapter name
        self._versions: dict[str, str] = {}  # adapter prefix -> content id of the loaded weights
        self._counter = 0
        self._lock = threading.RLock()
        self.loads = 0  # adapters loaded from the store so far (for metrics and tests)

    # -- loading -----------------------------------------------------------------------------------
    def _check_base(self, prefix: str, cfg: dict) -> None:
        base = str(cfg.get("base_model_name_or_path") or "").strip("/")
        if self.base_prefix and base.startswith("models/") and base != self.base_prefix:
            raise AdapterError(f"adapter {prefix!r} was trained on base {base!r}, not {self.base_prefix!r}; ask for it with base {base!r}")

    def _load(self, prefix: str) -> str:
        from peft import PeftModel

        name = f"adapter{self._counter}"
        with tempfile.TemporaryDirectory(prefix="atom-adapter-") as tmp:
            fetch_adapter(self.store, prefix, tmp)
            self._check_base(prefix, json.loads((Path(tmp) / ADAPTER_CONFIG).read_text()))
            try:
                peft = self._peft
                if peft is None:
                    peft = self._peft = PeftModel.from_pretrained(self.bundle.lm.model, tmp, adapter_name=name, is_trainable=False)
                else:
                    peft.load_adapter(tmp, adapter_name=name, is_trainable=False)
            except Exception as exc:  # peft raises RuntimeError/ValueError/KeyError on mismatching adapters
                raise AdapterError(
                    f"adapter {prefix!r} does not fit this base model ({type(exc).__name__}: "
                    f"{str(exc)[:300]}); it was trained on another base"
                ) from None
        self._counter += 1
        self.loads += 1
        peft.eval()
        return name

    def _loaded_peft(self) -> PeftModel:
        """The PEFT wrapper, which exists while an adapter is loaded."""
        if self._peft is None:
            raise RuntimeError("no adapter is loaded")
        return self._peft

    def _evict_over_capacity(self, keep: str) -> None:
        while len(self._names) > self.capacity:
            old_prefix, old_name = next(iter(self._names.items()))
            if old_prefix == keep:
                self._names.move_to_end(keep)
                continue
            del self._names[old_prefix]
            self._versions.pop(old_prefix, None)
            self._loaded_peft().set_adapter(self._names[keep])  # never delete the active adapter
            self._loaded_peft().delete_adapter(old_name)

    def adapter_name(self, prefix: str, version: str = "") -> str:
        """Make sure the adapter is loaded; returns its PEFT name (and marks it recently used).
        `version` is the adapter's content id: an adapter retrained under the same prefix has
        another one and is loaded afresh instead of serving the old weights."""
        prefix = _norm(prefix)
        with self._lock:
            if prefix in self._names and self._versions.get(prefix) == version:
                self._names.move_to_end(prefix)
                return self._names[prefix]
            self.evict(prefix)
            name = self._load(prefix)
            self._names[prefix] = name
            self._versions[prefix] = version
            self._evict_over_capacity(prefix)
            return name

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._names)

    def evict(self, prefix: str) -> bool:
        """Drop an adapter (e.g. after its run was re-trained). Returns whether it was loaded."""
        prefix = _norm(prefix)
        with self._lock:
            name = self._names.pop(prefix, None)
            self._versions.pop(prefix, None)
            if name is None:
                return False
            if self._names:
                self._loaded_peft().set_adapter(next(reversed(self._names.values())))
                self._loaded_peft().delete_adapter(name)
            else:
                # The last adapter: unwrap completely so the base model is plain again.
                self.bundle.lm.model = self._loaded_peft().unload()
                self._peft = None
            return True

    # -- use ---------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def use(self, adapter: str | None = None, version: str = "") -> Iterator[object]:
        """Hold the pool and yield the model to sample with: the base (adapters disabled) when
        `adapter` is empty, else the base with that adapter (at content id `version`) active."""
        with self._lock:
            if adapter:
                name = self.adapter_name(adapter, version)
                peft = self._loaded_peft()
                peft.set_adapter(name)
                peft.eval()
                yield peft
            elif self._peft is None:
                yield self.bundle.lm.model
            else:
                with self._peft.disable_adapter():
                    yield self._peft

    def sample(self, prompts: Sequence[str], seeds: Sequence[int], adapter: str | None = None, adapter_version: str = "", **kwargs):
        """sample_motions with the chosen adapter (None = base)."""
        from services.generator.sampling import sample_motions

        with self.use(adapter, adapter_version) as model:
            return sample_motions(self.bundle, prompts, seeds, model=model, **kwargs)


class ModelCache:
    """Base bundles by store prefix (LRU, `max_bases`), each with its own AdapterPool."""

    def __init__(self, store, max_bases: int = 2, adapters_per_base: int = 4, device: str = "cpu", dtype=None):
        self.store = store
        self.max_bases = max_bases
        self.adapters_per_base = adapters_per_base
        self.device = device
        self.dtype = dtype  # the language model's torch dtype; None keeps float32
        self._pools: OrderedDict[str, AdapterPool] = OrderedDict()
        self._lock = threading.Lock()

    def pool(self, base_prefix: str, version: str = "") -> AdapterPool:
        """The pool of the bundle under `base_prefix`; `version` (its content id) reloads the bundle
        when the prefix now holds another model."""
        base_prefix = _norm(base_prefix)
        with self._lock:
            pool = self._pools.get(base_prefix)
            if pool is not None and pool.version == version:
                self._pools.move_to_end(base_prefix)
                return pool
        bundle = load_bundle(self.store, base_prefix, device=self.device)  # slow: outside the lock
        if self.dtype is not None:
            bundle.lm.model.to(self.dtype)
        with self._lock:
            pool = self._pools.get(base_prefix)
            if pool is None or pool.version != version:
                pool = AdapterPool(bundle, self.store, self.adapters_per_base, base_prefix)
                pool.version = version
            self._pools[base_prefix] = pool
            self._pools.move_to_end(base_prefix)
            while len(self._pools) > self.max_bases:
                self._pools.popitem(last=False)
            return pool

    def loaded(self) -> dict[str, list[str]]:
        with self._lock:
            return {k: p.loaded() for k, p in self._pools.items()}
