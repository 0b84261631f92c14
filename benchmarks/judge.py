"""VLM judge throughput against a local chat-completions server with a fixed reply latency.

Prints wall time for one batch at concurrency 1 (the baseline) and at higher concurrency, and
for a second run of the same batch served from the cache (no HTTP calls), as ratios against
the baseline measured in the same run. The server is tests/judge/fake_openai.py.

    PYTHONPATH=. .venv/bin/python benchmarks/judge.py --items 24 --latency 0.1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "judge"))

from conftest import make_item  # noqa: E402
from fake_openai import FakeOpenAI, score_reply  # noqa: E402

from atom.store import LocalStore  # noqa: E402
from services.judge.vlm import VLMConfig, VLMJudge  # noqa: E402


def run(srv: FakeOpenAI, store, items, concurrency: int) -> tuple[float, int]:
    cfg = VLMConfig(model="bench", base_url=srv.base_url, concurrency=concurrency)
    with VLMJudge(cfg, store, env={"ATOM_JUDGE_API_KEY": "bench"}) as judge:
        t = time.perf_counter()
        out = list(judge.score_batch(items))
        dt = time.perf_counter() - t
        assert all(j.ok for j in out), [j.error for j in out if not j.ok][:3]
        return dt, judge.stats.http_calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=24)
    ap.add_argument("--latency", type=float, default=0.1, help="server seconds per reply")
    ap.add_argument("--frames", type=int, default=8, help="images per item (frame-by-frame)")
    args = ap.parse_args()

    with FakeOpenAI([score_reply(5, delay_s=args.latency)]) as srv, tempfile.TemporaryDirectory() as tmp:
        rows = []
        for conc in (1, 4, 8):
            store = LocalStore(Path(tmp) / f"c{conc}")
            items = [make_item(i, n_frames=args.frames) for i in range(args.items)]
            dt, calls = run(srv, store, items, conc)
            rows.append((f"concurrency {conc}", dt, calls))
            if conc == 8:
                dt2, calls2 = run(srv, store, items, conc)
                rows.append(("cached rerun", dt2, calls2))
        base = rows[0][1]
        print(f"{args.items} items x {args.frames} frames, server latency {args.latency * 1000:.0f} ms")
        for name, dt, calls in rows:
            print(f"  {name:<16} {dt:7.3f} s  {calls:>3} HTTP calls  speed-up vs concurrency 1: {base / dt:6.1f}x")


if __name__ == "__main__":
    main()
