"""What a run needs before stage 1, made or imported once and cached in the store.

Embedded: the procedural world corpus (built here, it is plain data), the tiny base model
pretrained on it and the embedded evaluator: those two are trainer-service jobs (Trainer.StartTraining
with `pretrain` / `evaluator`), started and watched here like preference training, so the
controller itself trains nothing. A user's own files (a HumanML3D directory, the released MotionGPT checkpoint with its
T5 and normalisation files, the Guo et al. evaluator) are imported under a prefix keyed by the
sha256 of their content, so another file with the same name is another artifact, and each import
is recorded (`assets`) with what it read, for the report."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import click

from atom.pipeline.config import PipelineConfig
from atom.runtime.client import ServiceClient
from atom.runtime.cpus import available_cpus
from atom.store import ArtifactStore

log = logging.getLogger("atom.pipeline")


def _say(msg: str, show: bool) -> None:
    log.info(msg)
    if show:
        click.echo(msg, err=True)


def world_prefix(cfg: PipelineConfig) -> str:
    return f"datasets/world-s{cfg.world.seed}-n{cfg.world.clips}"


ASSET_RECORD = "ASSET.json"  # what an import read, beside what it wrote

# What the readers use of a HumanML3D directory; MotionGPT's tmp/ caches, animations and the
# like stay behind.
DATASET_PARTS = ("new_joint_vecs", "new_joints", "texts", "labels")
DATASET_FILES = ("Mean.npy", "Std.npy", "train.txt", "val.txt", "test.txt", "train_val.txt", "all.txt")


def dataset_files(root: Path) -> list[Path]:
    files = [root / name for name in DATASET_FILES if (root / name).is_file()]
    for part in DATASET_PARTS:
        if (root / part).is_dir():
            files += sorted(p for p in (root / part).rglob("*") if p.is_file())
    return files


def dataset_record(root: Path) -> tuple[str, dict, list[Path]]:
    """A user's HumanML3D directory -> (store prefix keyed by its content, asset record, files)."""
    from atom.store.filehash import files_sha256

    if not (root / "texts").is_dir() or not (root / "new_joint_vecs").is_dir():
        raise FileNotFoundError(f"{root} is not a HumanML3D directory (needs texts/ and new_joint_vecs/)")
    files = dataset_files(root)
    digests = files_sha256(files)
    h = hashlib.sha256()
    for p, d in zip(files, digests):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + d.encode() + b"\n")
    digest = h.hexdigest()
    record = {
        "role": "dataset",
        "name": root.resolve().name,
        "sha256": digest,
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
    }
    return f"datasets/{root.resolve().name}-{digest[:12]}", record, files


def import_dataset(store: ArtifactStore, root: Path, show: bool = True) -> tuple[str, dict]:
    """A user's HumanML3D directory uploaded once -> (store prefix, asset record)."""
    prefix, record, files = dataset_record(root)
    if not store.exists(f"{prefix}/DONE"):
        _say(f"uploading {root} ({len(files)} files) to the store under {prefix}/ ...", show)
        for p in files:
            store.put_file(f"{prefix}/{p.relative_to(root).as_posix()}", p)
        store.put_json(f"{prefix}/{ASSET_RECORD}", record)
        store.put_bytes(f"{prefix}/DONE", b"ok\n")  # written last: a half-uploaded copy is redone
    return prefix, record


def ensure_dataset(store: ArtifactStore, cfg: PipelineConfig, show: bool = True) -> str:
    """The store prefix of the HumanML3D-layout dataset: a user's directory (uploaded once) or the
    procedural world, built on first use."""
    if cfg.world.dataset:
        return import_dataset(store, Path(cfg.world.dataset).expanduser(), show)[0]
    prefix = world_prefix(cfg)
    if store.exists(f"{prefix}/DONE"):
        return prefix
    from atom.motion.world.corpus import build_corpus

    _say(f"building the procedural motion world ({cfg.world.clips} clips, seed {cfg.world.seed}) ...", show)
    with tempfile.TemporaryDirectory() as tmp:
        # Worker processes make the same bytes as one (clips are seeded by index, kept in order).
        build_corpus(Path(tmp) / "world", cfg.world.clips, cfg.world.seed, workers=min(4, available_cpus()))
        store.put_tree(prefix, Path(tmp) / "world")
    store.put_bytes(f"{prefix}/DONE", b"ok\n")  # written last: a half-uploaded corpus is rebuilt
    return prefix


def base_model_prefix(cfg: PipelineConfig) -> str:
    return f"models/base-tiny-s{cfg.world.seed}-n{cfg.world.clips}"


def base_prefix_for(cfg: PipelineConfig) -> str:
    """Where the run's base model bundle is (or will be): the given prefix, the content-keyed
    import of a checkpoint, or the tiny model pretrained on the world. Creates nothing."""
    if cfg.model.base:
        return cfg.model.base.rstrip("/")
    if cfg.model.checkpoint:
        from atom.mgpt.checkpoint import asset_record, find_assets, import_prefix

        return import_prefix(asset_record(find_assets(cfg.model.checkpoint, cfg.model.t5_dir, cfg.model.mean_std)))
    prefix = base_model_prefix(cfg)
    return prefix if cfg.model.pretrain_preset == "default" else f"{prefix}-{cfg.model.pretrain_preset}"


def import_checkpoint(store: ArtifactStore, cfg: PipelineConfig, show: bool = True) -> str:
    """The released MotionGPT files -> a bundle under models/motiongpt-<content hash> (once)."""
    from atom.mgpt.bundle import bundle_exists
    from atom.mgpt.checkpoint import asset_record, find_assets, import_motiongpt_checkpoint, import_prefix

    assets = find_assets(cfg.model.checkpoint, cfg.model.t5_dir, cfg.model.mean_std)
    record = asset_record(assets)
    if not bundle_exists(store, import_prefix(record)):
        _say(f"importing {assets.checkpoint} (T5 {assets.t5_dir}, normalisation {assets.mean.parent}) into the store ...", show)
    return import_motiongpt_checkpoint(store, assets, record)


@contextmanager
def trainer_service(store: ArtifactStore, trainer: ServiceClient | None) -> Iterator[ServiceClient]:
    """The trainer to run a model job on: the given client, or (for a command that starts no
    trainer of its own, such as `atomctl t2m`) one started here on loopback for the job's length."""
    if trainer is not None:
        yield trainer
        return
    from atom.runtime.client import connect
    from atom.runtime.launch import LocalServices

    with LocalServices(store.url, ["trainer"], log_dir=Path(".atom/logs")) as group:
        group.wait_ready()
        with connect("trainer", group.endpoints()["trainer"]) as client:
            client.wait_ready(60)
            yield client


def run_trainer_job(trainer: ServiceClient, request, label: str, show: bool = True):
    """Start a trainer job (or find it finished: the job id is a hash of the request), watch it to
    its end with a progress bar, and return its final Job; a job that did not succeed raises."""
    from atom.pipeline.context import Progress
    from atom.v1 import common_pb2, trainer_pb2

    job = trainer.call("StartTraining", request, timeout=120)
    terminal = (common_pb2.JOB_STATE_SUCCEEDED, common_pb2.JOB_STATE_FAILED, common_pb2.JOB_STATE_CANCELLED)
    final, done = job, job.metrics.step
    if job.state not in terminal:
        bar = Progress(label, max(job.metrics.total_steps, 1), show)
        bar.advance(done)
        try:
            for event in trainer.stream("WatchJob", trainer_pb2.JobRef(job_id=job.job_id), timeout=24 * 3600):
                final = event.job
                log.info("%s: %s", label, event.message)
                if final.metrics.total_steps and bar.total != final.metrics.total_steps:
                    bar.total = final.metrics.total_steps
                if final.metrics.step > done:
                    bar.advance(final.metrics.step - done)
                    done = final.metrics.step
                if final.state in terminal:
                    break
        finally:
            bar.close()
    if final.state != common_pb2.JOB_STATE_SUCCEEDED:
        raise RuntimeError(
            f"trainer job {job.job_id} ({label}) ended {common_pb2.JobState.Name(final.state)}: "
            f"{final.error or 'no reason given'}; run the command again to start it again"
        )
    return final


def will_pretrain(store: ArtifactStore, cfg: PipelineConfig) -> bool:
    """Whether ensure_base_model will pretrain the tiny base model (it is not in the store yet)."""
    return not cfg.model.base and not cfg.model.checkpoint and not store.exists(f"{base_prefix_for(cfg)}/bundle.json")


def ensure_base_model(
    store: ArtifactStore, cfg: PipelineConfig, dataset: str, show: bool = True, trainer: ServiceClient | None = None
) -> str:
    """The run's base model: given, imported, or pretrained on the world by the trainer service
    (first run only; `trainer` is the client to ask, else one is started for the job)."""
    if cfg.model.base:
        return cfg.model.base
    if cfg.model.checkpoint:
        return import_checkpoint(store, cfg, show)
    prefix = base_prefix_for(cfg)
    if store.exists(f"{prefix}/bundle.json"):
        return prefix
    from atom.v1 import common_pb2, trainer_pb2

    tiny = cfg.model.pretrain_preset == "tiny"
    _say(
        "pretraining the tiny base model on the world in the trainer service (first run only; "
        + ("the tiny preset: seconds) ..." if tiny else f"about 6-7 min on 2 cores, capped at {cfg.model.pretrain_minutes:g} min) ..."),
        show,
    )
    request = trainer_pb2.StartTrainingRequest(
        output_prefix=prefix,
        pretrain=trainer_pb2.PretrainJob(
            dataset=common_pb2.ArtifactRef(key=dataset, sha256=dataset_digest(store, dataset) or ""),
            preset=cfg.model.pretrain_preset,
            seed=cfg.seed,
            # The tiny preset has no cap (it takes seconds); the bundle records the cap it was made under.
            time_budget_s=None if tiny else cfg.model.pretrain_minutes * 60,
        ),
    )
    with trainer_service(store, trainer) as client:
        job = run_trainer_job(client, request, "pretrain", show)
    f = job.figures
    if "vq_mpjpe_mm" in f:
        _say(
            f"base model pretrained in {f.get('seconds', 0):.0f} s: VQ-VAE round trip {f['vq_mpjpe_mm']:.1f} mm MPJPE on "
            f"held-out clips (root-relative {f['vq_mpjpe_rootrel_mm']:.1f} mm), language-model held-out loss "
            f"{f['lm_eval_loss']:.3f}",
            show,
        )
    if f.get("stopped_early"):
        _say(
            f"warning: pretraining hit its {cfg.model.pretrain_minutes:g}-minute cap after {f['vq_steps_done']:.0f} "
            f"VQ-VAE and {f['lm_steps_done']:.0f} language-model steps ({f['vq_steps']:.0f} and {f['lm_steps']:.0f} "
            "planned); the base model, and so every result, now depends on this machine's speed. Raise "
            "model.pretrain_minutes for the reproducible model.",
            show,
        )
    return prefix


def evaluator_prefix(dataset: str) -> str:
    return f"models/evaluator-{dataset.rsplit('/', 1)[-1]}"


# Guo et al.'s evaluator in MotionGPT's deps/ layout (relative to deps/), and in our flat layout.
GUO_DEPS_LAYOUT = {
    "finest.tar": "t2m/t2m/text_mot_match/model/finest.tar",
    "meta/mean.npy": "t2m/t2m/Comp_v6_KLD01/meta/mean.npy",
    "meta/std.npy": "t2m/t2m/Comp_v6_KLD01/meta/std.npy",
    "glove/our_vab_data.npy": "glove/our_vab_data.npy",
    "glove/our_vab_words.pkl": "glove/our_vab_words.pkl",
    "glove/our_vab_idx.pkl": "glove/our_vab_idx.pkl",
}


def guo_files(root: Path) -> dict[str, Path]:
    """The evaluator's six files under `root`: our layout (finest.tar, glove/, meta/) or MotionGPT's
    deps/ folder (deps/t2m/t2m/text_mot_match/..., deps/t2m/t2m/Comp_v6_KLD01/meta, deps/glove)."""
    flat = {name: root / name for name in GUO_DEPS_LAYOUT}
    if all(p.is_file() for p in flat.values()):
        return flat
    deps = {name: root / rel for name, rel in GUO_DEPS_LAYOUT.items()}
    if all(p.is_file() for p in deps.values()):
        return deps
    missing = [name for name, p in flat.items() if not p.is_file()]
    raise FileNotFoundError(
        f"{root} is not a Guo et al. evaluator folder: missing {', '.join(missing)} (or, in MotionGPT's deps/ "
        f"layout, {', '.join(GUO_DEPS_LAYOUT.values())}); get them with MotionGPT's "
        "prepare/download_t2m_evaluators.sh and prepare/download_glove.sh"
    )


def guo_record(root: Path) -> tuple[str, dict, dict[str, Path]]:
    """The Guo evaluator's files -> (store prefix keyed by their content, asset record, files)."""
    from atom.store.filehash import files_sha256

    files = guo_files(root)
    names = sorted(files)
    digests = dict(zip(names, files_sha256([files[n] for n in names])))
    digest = hashlib.sha256("|".join(f"{n}={digests[n]}" for n in names).encode()).hexdigest()
    record = {
        "role": "evaluator",
        "name": "guo-t2m",
        "sha256": digest,
        "bytes": sum(files[n].stat().st_size for n in names),
        "parts": {n: digests[n] for n in names},
    }
    return f"models/guo-{digest[:12]}", record, files


def import_guo_evaluator(store: ArtifactStore, root: Path, show: bool = True) -> tuple[str, dict]:
    """The Guo evaluator's files uploaded once -> (store prefix, asset record)."""
    prefix, record, files = guo_record(root)
    names = sorted(files)
    if not store.exists(f"{prefix}/DONE"):
        _say(f"importing the Guo et al. evaluator from {root} into the store under {prefix}/ ...", show)
        for n in names:
            store.put_file(f"{prefix}/{n}", files[n])
        store.put_json(f"{prefix}/{ASSET_RECORD}", record)
        store.put_bytes(f"{prefix}/DONE", b"ok\n")
    return prefix, record


def evaluator_spec(store: ArtifactStore, cfg: PipelineConfig, embedded_prefix: str, show: bool = True) -> str:
    """What the evaluator service is asked to load: embedded:<prefix> or guo:<store prefix>."""
    if cfg.eval.evaluator.startswith("guo:"):
        return "guo:" + import_guo_evaluator(store, Path(cfg.eval.evaluator[4:]).expanduser(), show)[0]
    return f"embedded:{embedded_prefix}"


EVALUATOR_STEPS_TINY = 40  # the embedded evaluator's steps under the tiny preset (seconds)


def evaluator_job(store: ArtifactStore, cfg: PipelineConfig, dataset: str):
    """The trainer request that trains the embedded evaluator on the dataset, or None when there is
    nothing to train (a Guo evaluator is configured, or the evaluator is in the store already)."""
    prefix = evaluator_prefix(dataset)
    if cfg.eval.evaluator != "embedded" or store.exists(f"{prefix}/evaluator.json"):
        return None
    from atom.v1 import common_pb2, trainer_pb2

    return trainer_pb2.StartTrainingRequest(
        output_prefix=prefix,
        evaluator=trainer_pb2.EvaluatorJob(
            dataset=common_pb2.ArtifactRef(key=dataset, sha256=dataset_digest(store, dataset) or ""),
            seed=cfg.seed,
            steps=EVALUATOR_STEPS_TINY if cfg.model.pretrain_preset == "tiny" else None,
        ),
    )


def start_evaluator(store: ArtifactStore, cfg: PipelineConfig, dataset: str, trainer: ServiceClient, show: bool = True) -> None:
    """Ask the trainer to train the embedded evaluator now and return at once; `ensure_evaluator`
    later finds the job (its id is a hash of the request) and waits for it. A first run does this
    while the base model pretrains: both are one-thread jobs, and the trainer runs them side by side."""
    request = evaluator_job(store, cfg, dataset)
    if request is not None:
        _say("training the embedded text/motion evaluator alongside, in the trainer service (first run only) ...", show)
        trainer.call("StartTraining", request, timeout=120)


def ensure_evaluator(
    store: ArtifactStore, cfg: PipelineConfig, dataset: str, show: bool = True, trainer: ServiceClient | None = None
) -> str:
    """The embedded evaluator's prefix, trained on the dataset by the trainer service on first use
    (`trainer` is the client to ask, else one is started for the job; a job `start_evaluator`
    started is waited for). With a Guo evaluator configured there is nothing to train."""
    request = evaluator_job(store, cfg, dataset)
    if request is not None:
        _say("training the embedded text/motion evaluator in the trainer service (first run only) ...", show)
        with trainer_service(store, trainer) as client:
            run_trainer_job(client, request, "evaluator", show)
    return evaluator_prefix(dataset)


def collect_assets(store: ArtifactStore, dataset: str, base_model: str, evaluator: str) -> list[dict]:
    """What a run used, each with its content hash, for the report: the dataset, the base model (and,
    for an imported MotionGPT checkpoint, each file it was made from) and the evaluator."""
    from atom.store import ArtifactNotFound, sha256_hex

    def record(prefix: str, role: str) -> dict:
        try:
            return store.get_json(f"{prefix}/{ASSET_RECORD}")
        except ArtifactNotFound:
            return {"role": role, "name": prefix}

    out = [record(dataset, "dataset")]
    manifest = store.get_bytes(f"{base_model.rstrip('/')}/bundle.json")
    out.append({"role": "base_model", "name": base_model, "sha256": sha256_hex(manifest)})
    info = json.loads(manifest).get("info") or {}
    for role, rec in (info.get("assets") or {}).items():
        out.append({"role": f"base_model.{role}", **rec})
    kind, _, prefix = evaluator.partition(":")
    if kind == "guo":
        out.append(record(prefix, "evaluator"))
    elif prefix:
        data = store.get_bytes(f"{prefix}/evaluator.json") if store.exists(f"{prefix}/evaluator.json") else b""
        out.append({"role": "evaluator", "name": evaluator, **({"sha256": sha256_hex(data)} if data else {})})
    return out


# -- identities of the run-level inputs, for the stage keys -----------------------------------------


def dataset_prefix_for(cfg: PipelineConfig) -> str:
    return dataset_record(Path(cfg.world.dataset).expanduser())[0] if cfg.world.dataset else world_prefix(cfg)


def evaluator_spec_for(cfg: PipelineConfig, dataset: str) -> str:
    if cfg.eval.evaluator.startswith("guo:"):
        return "guo:" + guo_record(Path(cfg.eval.evaluator[4:]).expanduser())[0]
    return f"embedded:{evaluator_prefix(dataset)}"


def _digest_of_keys(store: ArtifactStore, keys: list[str]) -> str | None:
    from atom.store import sha256_hex

    present = [k for k in keys if store.exists(k)]
    if not present:
        return None
    return hashlib.sha256("|".join(f"{k.rsplit('/', 1)[-1]}={sha256_hex(store.get_bytes(k))}" for k in present).encode()).hexdigest()


def dataset_digest(store: ArtifactStore, prefix: str) -> str | None:
    """The dataset's content identity: an import's record holds the hash of every file; the world
    is identified by its summary, splits and statistics. None while it does not exist."""
    if not store.exists(f"{prefix}/DONE"):
        return None
    return _digest_of_keys(
        store, [f"{prefix}/{n}" for n in (ASSET_RECORD, "world.json", "train.txt", "val.txt", "test.txt", "Mean.npy", "Std.npy")]
    )


def base_model_digest(store: ArtifactStore, prefix: str) -> str | None:
    """The bundle manifest lists the sha256 of every file of the model: its hash is the model's."""
    return _digest_of_keys(store, [f"{prefix.rstrip('/')}/bundle.json"])


def evaluator_digest(store: ArtifactStore, spec: str) -> str | None:
    kind, _, prefix = spec.partition(":")
    if kind == "guo":
        return _digest_of_keys(store, [f"{prefix}/{ASSET_RECORD}"]) if store.exists(f"{prefix}/DONE") else None
    return _digest_of_keys(store, [f"{prefix}/evaluator.json", f"{prefix}/model.safetensors"])
