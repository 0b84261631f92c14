"""What the embedded run needs before stage 1, made once and cached in the store:
the procedural world corpus, the tiny base model pretrained on it, and the embedded evaluator."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import click

from atom.pipeline.config import PipelineConfig
from atom.store import ArtifactStore

log = logging.getLogger("atom.pipeline")


def _say(msg: str, show: bool) -> None:
    log.info(msg)
    if show:
        click.echo(msg, err=True)


def world_prefix(cfg: PipelineConfig) -> str:
    return f"datasets/world-s{cfg.world.seed}-n{cfg.world.clips}"


def ensure_dataset(store: ArtifactStore, cfg: PipelineConfig, show: bool = True) -> str:
    """The store prefix of the HumanML3D-layout dataset: a user's directory (uploaded once) or the
    procedural world, built on first use."""
    if cfg.world.dataset:
        root = Path(cfg.world.dataset)
        if not (root / "texts").is_dir() or not (root / "new_joint_vecs").is_dir():
            raise FileNotFoundError(f"{root} is not a HumanML3D directory (needs texts/ and new_joint_vecs/)")
        prefix = f"datasets/{root.resolve().name}"
        if not store.exists(f"{prefix}/test.txt"):
            _say(f"uploading {root} to the store under {prefix}/ ...", show)
            store.put_tree(prefix, root)
        return prefix
    prefix = world_prefix(cfg)
    if store.exists(f"{prefix}/DONE"):
        return prefix
    from atom.motion.world.corpus import build_corpus

    _say(f"building the procedural motion world ({cfg.world.clips} clips, seed {cfg.world.seed}) ...", show)
    with tempfile.TemporaryDirectory() as tmp:
        build_corpus(Path(tmp) / "world", cfg.world.clips, cfg.world.seed)
        store.put_tree(prefix, Path(tmp) / "world")
    store.put_bytes(f"{prefix}/DONE", b"ok\n")  # written last: a half-uploaded corpus is rebuilt
    return prefix


def local_dataset(store: ArtifactStore, prefix: str) -> Path:
    """A local copy of a dataset in the store (training reads files)."""
    from atom.store.localcache import local_tree

    return local_tree(store, prefix)


def base_model_prefix(cfg: PipelineConfig) -> str:
    return f"models/base-tiny-s{cfg.world.seed}-n{cfg.world.clips}"


def ensure_base_model(store: ArtifactStore, cfg: PipelineConfig, dataset: str, show: bool = True) -> str:
    if cfg.model.base:
        return cfg.model.base
    if cfg.model.checkpoint:
        from atom.mgpt.checkpoint import import_motiongpt_checkpoint

        prefix = "models/motiongpt-base"
        if not store.exists(f"{prefix}/bundle.json"):
            _say(f"importing {cfg.model.checkpoint} into the store ...", show)
            import_motiongpt_checkpoint(cfg.model.checkpoint, cfg.model.t5_dir, store, prefix)
        return prefix
    prefix = base_model_prefix(cfg)
    if cfg.model.pretrain_preset != "default":
        prefix += f"-{cfg.model.pretrain_preset}"
    if store.exists(f"{prefix}/bundle.json"):
        return prefix
    from services.generator.pretrain import PretrainConfig, pretrain

    _say(f"pretraining the tiny base model on the world (first run only; about 9 min on 2 cores, "
         f"capped at {cfg.model.pretrain_minutes:g} min) ...", show)
    root = local_dataset(store, dataset)
    if cfg.model.pretrain_preset == "tiny":
        pcfg = PretrainConfig.tiny(seed=cfg.seed)
    else:
        pcfg = PretrainConfig(time_budget_s=cfg.model.pretrain_minutes * 60, seed=cfg.seed)
    # The store prefix, not the local cache path: the bundle manifest is the model's identity
    # (it is hashed into every motion's key), and the cache path differs from store to store.
    result = pretrain(root, store, prefix, pcfg, dataset_name=dataset)
    if result.stopped_early:
        _say(f"warning: pretraining hit its {cfg.model.pretrain_minutes:g}-minute cap after {result.vq_steps_done} "
             f"VQ-VAE and {result.lm_steps_done} language-model steps ({pcfg.vq_steps} and {pcfg.lm_steps} planned); "
             "the base model, and so every result, now depends on this machine's speed. Raise "
             "model.pretrain_minutes for the reproducible model.", show)
    return prefix


def evaluator_prefix(dataset: str) -> str:
    return f"models/evaluator-{dataset.rsplit('/', 1)[-1]}"


def ensure_evaluator(store: ArtifactStore, cfg: PipelineConfig, dataset: str, show: bool = True) -> str:
    prefix = evaluator_prefix(dataset)
    if cfg.eval.evaluator != "embedded" or store.exists(f"{prefix}/evaluator.json"):
        return prefix
    from services.evaluator.embedded import EmbeddedConfig, train_embedded_evaluator

    _say("training the embedded text/motion evaluator (first run only) ...", show)
    root = local_dataset(store, dataset)
    steps = 40 if cfg.model.pretrain_preset == "tiny" else EmbeddedConfig().steps
    model = train_embedded_evaluator(root, EmbeddedConfig(seed=cfg.seed, steps=steps))
    model.save(store, prefix)
    return prefix
