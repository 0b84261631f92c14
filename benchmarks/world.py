"""Throughput of the procedural motion world: clips per minute on one core.

Prints, for the same clips: composing alone (joints and labels), and the full corpus build
(features, recovered joints, captions with POS tags, files written). The target is at least
1000 clips a minute for the full build.

    PYTHONPATH=. .venv/bin/python benchmarks/world.py [num_clips]
"""

from __future__ import annotations

import sys
import tempfile
import time

from atom.motion.world.corpus import build_corpus, make_world_clip


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    seed = 7
    make_world_clip(seed, 0)  # warm imports (scipy) outside the timing
    t0 = time.perf_counter()
    frames = 0
    for i in range(n):
        _, clip, _ = make_world_clip(seed, i)
        frames += clip.num_frames
    t_compose = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        summary = build_corpus(tmp, n, seed)
        t_build = time.perf_counter() - t0

    print(f"clips: {n}, mean length {frames / n:.1f} frames ({frames / n / 20:.2f} s)")
    print(f"compose only:      {60 * n / t_compose:8.0f} clips/min  ({1000 * t_compose / n:.1f} ms/clip)")
    print(f"full corpus build: {60 * n / t_build:8.0f} clips/min  ({1000 * t_build / n:.1f} ms/clip)")
    print(f"compose share of the build: {t_compose / t_build:.2f}")
    print(f"target >= 1000 clips/min: {'met' if 60 * n / t_build >= 1000 else 'NOT met'}")
    print(f"kinds: {summary.kinds}")


if __name__ == "__main__":
    main()
