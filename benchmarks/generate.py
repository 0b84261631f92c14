"""Generator throughput on CPU: motions per second at batch 1, 8 and 32, and the speed-up of
batched sampling over one-at-a-time, all measured in this run on the same model.

  python benchmarks/generate.py                       # the pretrain architecture, fresh weights
  python benchmarks/generate.py --store DIR --model models/base-world   # a stored bundle

Every sample runs to `--tokens` motion tokens (the end token is masked off) so that all batch
sizes do the same work; the same (prompt, seed) gives the same motion at every batch size, which
the script checks.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def _fresh_bundle():
    from atom.mgpt.bundle import ModelBundle
    from atom.mgpt.lm import MotionLM
    from atom.mgpt.tokenizer import WordTokenizer
    from atom.mgpt.vqvae import VQVAE
    from atom.motion.events import EVENT_TYPES
    from services.trainer.pretrain import PretrainConfig

    cfg = PretrainConfig()
    torch.manual_seed(0)
    vq = VQVAE(cfg.vq)
    with torch.no_grad():
        vq.quantizer.codebook.normal_()
    words = [f"a person {e.phrase} then {p}" for e in EVENT_TYPES for p in e.paraphrases]
    lm = MotionLM.create(WordTokenizer.build(words), cfg.t5, seed=0)
    lm.set_dropout(0.0)
    return ModelBundle(
        vqvae=vq, lm=lm, mean=np.zeros(263, np.float32), std=np.ones(263, np.float32), info={"name": "fresh-pretrain-architecture"}
    )


def main() -> None:
    from atom.motion.events import EVENT_TYPES
    from services.generator.sampling import SamplingConfig, sample_motions

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default=None)
    ap.add_argument("--model", default="models/base-world")
    ap.add_argument("--motions", type=int, default=32, help="motions per measurement")
    ap.add_argument("--tokens", type=int, default=24, help="motion tokens per sample (4 frames each)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2, help="best of N runs per batch size")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.store:
        from atom.mgpt.bundle import load_bundle
        from atom.store import open_store

        bundle = load_bundle(open_store(a.store), a.model)
    else:
        bundle = _fresh_bundle()
    prompts = [f"a person {EVENT_TYPES[i % len(EVENT_TYPES)].phrase}" for i in range(a.motions)]
    seeds = list(range(a.motions))
    sample_motions(bundle, prompts[:2], seeds[:2], max_tokens=4)  # warm-up

    rates, tokens = {}, {}
    for bs in (1, 8, 32):
        cfg = SamplingConfig(max_tokens=a.tokens, min_tokens=a.tokens, batch_size=bs)
        best = float("inf")
        for _ in range(a.repeats):
            t = time.perf_counter()
            out = sample_motions(bundle, prompts, seeds, config=cfg)
            best = min(best, time.perf_counter() - t)
        rates[bs] = a.motions / best
        tokens[bs] = [m.tokens.tolist() for m in out]
        print(
            f"batch {bs:>2}: {rates[bs]:7.2f} motions/s  ({best:.2f} s for {a.motions} motions of "
            f"{a.tokens} tokens = {4 * a.tokens} frames)",
            flush=True,
        )
    same = tokens[1] == tokens[8] == tokens[32]
    print(f"speed-up batch 8 vs 1: {rates[8] / rates[1]:.1f}x, batch 32 vs 1: {rates[32] / rates[1]:.1f}x")
    print(f"identical motions at every batch size: {same}")
    print(f"model: {bundle.info.get('name')}, threads {a.threads}")


if __name__ == "__main__":
    main()
