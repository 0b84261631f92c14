"""The generator's gRPC servicer: Generate streams each motion as soon as it is in the store.

Motions are content-addressed (motions/<sha256>.npz), and each sample is indexed by what made it
(model, adapter, prompt, seed, settings) under samples/<key>.json, so asking again for a sample
that exists costs a store read, not a forward pass.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import CancelledError, wait

from atom.motion.record import MotionRecord
from atom.runtime import telemetry
from atom.runtime.device import resolve_compute
from atom.runtime.errors import FailedPrecondition, InvalidArgument, require, require_key
from atom.runtime.server import ServiceSpec, store_problem
from atom.store import open_store, sha256_hex
from atom.v1 import common_pb2, generator_pb2, generator_pb2_grpc
from services.generator.adapters import ModelCache
from services.generator.batcher import Batcher, WorkItem
from services.generator.sampling import (
    DECODINGS,
    DEFAULT_MAX_TOKENS,
    MOTIONGPT_MAX_NEW_TOKENS,
    MOTIONGPT_TOP_K,
    SamplingConfig,
    derive_seed,
)

log = logging.getLogger("atom.generator")

MOTIONS = telemetry.counter("atom_motions_generated_total", "Motions sampled (cache hits excluded)", ("model",))
SAMPLE_CACHE_HITS = telemetry.counter("atom_generator_cache_hits_total", "Samples served from the store", ("model",))
BATCH_SIZE = telemetry.histogram("atom_generator_batch_size", "Samples per model batch", (), buckets=(1, 2, 4, 8, 16, 32, 64, 128))
MAX_SAMPLES = 10_000


def sampling_from_proto(s: generator_pb2.SamplingParams, batch: int, model_decoding: str = "") -> SamplingConfig:
    """The request's sampling settings; an empty `decoding` takes the model's own."""
    decoding = s.decoding or model_decoding or "constrained"
    if decoding not in DECODINGS:
        raise InvalidArgument("sampling.decoding", f"unknown decoding {decoding!r}; use one of {', '.join(DECODINGS)}")

    def get(name: str, default):
        return getattr(s, name) if s.HasField(name) else default

    motiongpt = decoding == "motiongpt"
    try:
        return SamplingConfig(
            temperature=get("temperature", 1.0),
            top_k=get("top_k", MOTIONGPT_TOP_K if motiongpt else 0),
            top_p=get("top_p", 1.0),
            max_tokens=get("max_length", 0) or (MOTIONGPT_MAX_NEW_TOKENS if motiongpt else DEFAULT_MAX_TOKENS),
            min_tokens=0 if motiongpt else 1,
            decoding=decoding,
            batch_size=batch,
        )
    except ValueError as exc:
        raise InvalidArgument("sampling", str(exc)) from None


class GeneratorServicer(generator_pb2_grpc.GeneratorServicer):
    def __init__(self, store_url: str, default_base: str = "", max_batch: int = 32):
        self.store = open_store(store_url)
        self.default_base = default_base or os.environ.get("ATOM_GENERATOR_BASE", "")
        self.compute = resolve_compute()
        dtype = None if self.compute.dtype == "fp32" else self.compute.torch_dtype
        self.models = ModelCache(self.store, device=self.compute.device, dtype=dtype)
        self.max_batch = max_batch
        self.batcher = Batcher(self._run_batch, max_batch=max_batch)
        self._decodings: dict[str, str] = {}  # model content id -> its own decoding

    # -- identities -----------------------------------------------------------------------------
    def _model_id(self, prefix: str, manifest_key: str) -> str:
        """A content id, read on every request (a small file): the same name holding other weights
        is another model, and the model cache reloads it."""
        data = self.store.get_bytes(manifest_key)
        model_id = sha256_hex(data)[:16]
        if manifest_key.endswith("/bundle.json") and model_id not in self._decodings:
            info = json.loads(data).get("info") or {}
            self._decodings[model_id] = str(info.get("decoding", "")) if isinstance(info, dict) else ""
        return model_id

    # -- sampling ---------------------------------------------------------------------------------
    def _run_batch(self, group, items):
        base, base_id, adapter, adapter_id, cfg_json, template = group
        fields = json.loads(cfg_json)
        constrained = fields.pop("constrained")
        cfg = SamplingConfig(**fields, **({} if "decoding" in fields else {"decoding": "constrained" if constrained else "motiongpt"}))
        pool = self.models.pool(base, version=base_id)
        BATCH_SIZE.observe(len(items))
        return pool.sample(
            [it.prompt for it in items],
            [it.seed for it in items],
            adapter=adapter or None,
            adapter_version=adapter_id,
            config=cfg,
            template=template or None,
        )

    def Generate(self, request, context):
        require(len(request.prompts) > 0, "prompts", "no prompts given")
        n = request.samples_per_prompt
        require(1 <= n <= 1000, "samples_per_prompt", f"must be within 1..1000, got {n}")
        require(
            len(request.prompts) * n <= MAX_SAMPLES,
            "prompts",
            f"{len(request.prompts) * n} samples in one request; at most {MAX_SAMPLES}, split the request",
        )
        for i, p in enumerate(request.prompts):
            require(bool(p.text.strip()), f"prompts[{i}].text", "is empty")
            require(len(p.text) <= 1000, f"prompts[{i}].text", "is longer than 1000 characters")
        base = request.model.base or self.default_base
        if not base:
            raise FailedPrecondition(
                "no base model: set model.base (a store prefix such as models/base-tiny) or "
                "ATOM_GENERATOR_BASE; `atomctl pretrain` makes one"
            )
        base = require_key(base, "model.base", "a store prefix such as models/base-tiny")
        adapter = require_key(request.model.adapter, "model.adapter", "") if request.model.adapter else ""
        base_id = self._model_id(base, f"{base.rstrip('/')}/bundle.json")
        adapter_id = self._model_id(adapter, f"{adapter}/adapter_model.safetensors") if adapter else ""
        model_id = base_id + (f"+{adapter_id}" if adapter_id else "")
        cfg = sampling_from_proto(request.sampling, self.max_batch, self._decodings.get(base_id, ""))
        template = request.sampling.prompt_template if cfg.constrained else ""
        if template and "{caption}" not in template:
            raise InvalidArgument("sampling.prompt_template", "must contain {caption}")
        cfg_json = json.dumps(
            {k: getattr(cfg, k) for k in ("temperature", "top_k", "top_p", "max_tokens", "min_tokens", "constrained", "batch_size")}
            | ({} if cfg.constrained else {"decoding": cfg.decoding}),
            sort_keys=True,
        )
        group = (base, base_id, adapter, adapter_id, cfg_json, template)

        # Samples already in the store first, then the rest through the batcher.
        pending = []
        for p in request.prompts:
            for i in range(n):
                seed = derive_seed(request.seed, p.text, i)
                index_key = (
                    "samples/" + hashlib.sha256(json.dumps([model_id, p.text, seed, cfg_json, template]).encode()).hexdigest() + ".json"
                )
                if self.store.exists(index_key):
                    SAMPLE_CACHE_HITS.labels(base).inc()
                    yield self._reply(p, i, seed, self.store.get_json(index_key), model_id, cached=True)
                else:
                    pending.append((p, i, seed, index_key, WorkItem(group, p.text, seed)))
        if not pending:
            return
        self.batcher.submit([w for *_, w in pending])
        try:
            waiting = {w.future: (p, i, seed, key) for p, i, seed, key, w in pending}
            while waiting:
                if not context.is_active():
                    return
                done, _ = wait(list(waiting), timeout=0.5, return_when="FIRST_COMPLETED")
                for fut in done:
                    p, i, seed, key = waiting.pop(fut)
                    sample = fut.result()
                    entry = self._store_sample(sample, p, seed, base, adapter, model_id, cfg_json)
                    self.store.put_json(key, entry)  # written last: the sample is complete
                    MOTIONS.labels(base).inc()
                    yield self._reply(p, i, seed, entry, model_id, cached=False)
        except CancelledError:
            return
        finally:
            for *_, w in pending:
                w.future.cancel()  # a cancelled call leaves nothing queued behind it

    def _store_sample(self, sample, prompt, seed, base, adapter, model_id, cfg_json) -> dict:
        if not sample.valid or sample.num_frames < 2:
            return {
                "motion": "",
                "num_frames": 0,
                "num_tokens": int(len(sample.tokens)),
                "reason": sample.reason or "too short to be a motion",
            }
        meta = {
            "prompt": prompt.text,
            "prompt_id": prompt.prompt_id,
            "seed": int(seed),
            "base": base,
            "adapter": adapter,
            "model_id": model_id,
            "sampling": json.loads(cfg_json),
            "finished": sample.finished,
        }
        record = MotionRecord(joints=sample.joints, features=sample.features, tokens=sample.tokens, meta=meta)
        info = self.store.put_content_addressed("motions", record.to_bytes(), ".npz", "application/x-npz")
        return {
            "motion": info.key,
            "num_frames": record.num_frames,
            "num_tokens": int(len(sample.tokens)),
            "sha256": info.sha256,
            "size": info.size,
        }

    @staticmethod
    def _reply(prompt, index, seed, entry, model_id, cached) -> generator_pb2.GeneratedMotion:
        return generator_pb2.GeneratedMotion(
            prompt_id=prompt.prompt_id,
            sample_index=index,
            sample_seed=seed,
            model_id=model_id,
            cached=cached,
            motion=common_pb2.ArtifactRef(
                key=entry["motion"], sha256=entry.get("sha256", ""), size=entry.get("size", 0), media_type="application/x-npz"
            ),
            num_frames=entry["num_frames"],
            num_tokens=entry["num_tokens"],
        )

    def ListModels(self, request, context):
        bases = sorted({k.rsplit("/", 1)[0] for k in self.store.list("models/") if k.endswith("/bundle.json")})
        loaded = [a for adapters in self.models.loaded().values() for a in adapters]
        return generator_pb2.ListModelsResponse(bases=bases, adapters_loaded=loaded)

    def shutdown(self) -> None:
        self.batcher.close()


def build_spec(store_url: str) -> ServiceSpec:
    servicer = GeneratorServicer(store_url)
    return ServiceSpec(
        name="generator",
        servicer=servicer,
        add_to_server=generator_pb2_grpc.add_GeneratorServicer_to_server,
        full_name="atom.v1.Generator",
        on_shutdown=servicer.shutdown,
        details=lambda: {
            "default_base": servicer.default_base,
            "loaded": json.dumps(servicer.models.loaded()),
            **servicer.compute.describe(),
        },
        ready=lambda: store_problem(servicer.store),
    )
