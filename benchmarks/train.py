"""Preference-training cost: steps/s and peak memory on CPU, and a memory estimate for MotionGPT-base.

Part 1 (measured, CPU): the embedded default model (atom.mgpt.lm.T5Size(): d_model 256, 3+3 layers)
with LoRA r 8 on q, v. One IPO step (2B sequences through the policy with gradients, 2B through
the reference without) against the baseline of one supervised LoRA step (B sequences, token
cross-entropy) on the same batch, same process settings. Each mode runs in its own subprocess so
its peak RSS (VmHWM) is its own. Reported: steps/s, the IPO/SFT time ratio, peak RSS above the
pre-step level, bytes autograd saves for backward (saved-tensor hooks: every activation tensor,
parameters excluded), and the tracemalloc peak (Python objects only; tensor storage is not
traced, which is why the hooks are there).

Part 2 (estimate, flan-t5-base = MotionGPT's language model): parameters are counted from the
config (and checked against an instantiated model); the activation bytes autograd saves are
measured on CPU for 2 pairs and scaled linearly to the batch (every saved tensor is per sequence,
attention's S x S included). Peak = weights + adapter/grad/Adam state + saved activations + the
largest transient (the 2B x L x V logits and their log-softmax, alive in the reference pass and
again as gradients in the backward pass). Compared with the paper's "about 12 GB on one RTX 4090".

  python benchmarks/train.py                 # both parts (part 2 needs ~2 GB RAM, about 1 min)
  python benchmarks/train.py --skip-base     # part 1 only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Callable, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

T = TypeVar("T")

MiB = 1024**2
GB = 1e9  # the paper says "12 GB"; part 2 prints decimal GB to compare like with like
TEXT_TOKENS = 64  # prompt length the task names for MotionGPT (incl. </s>)
MOTION_CODES = 49  # 196 frames / 4; labels add <start>, <end>, </s> -> 52
PAPER_GB = 12.0


def proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def saved_bytes(fn: Callable[[], T], exclude_storages: set[int]) -> tuple[int, T]:
    """Run fn() and return (distinct bytes autograd saved for backward, fn's result); tensors that
    share a storage are counted once, parameter storages not at all."""
    import torch

    seen: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        ptr = st.data_ptr()
        if ptr not in exclude_storages:
            seen[ptr] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return sum(seen.values()), out


def make_batch(lm, batch: int, text_tokens: int, motion_codes: int, seed: int = 0):
    """B prompts of exactly `text_tokens` ids (with </s>) and 2B motions of `motion_codes` codes."""
    import torch

    from services.trainer.train import Example

    g = torch.Generator().manual_seed(seed)
    words = [w for w in lm.tokenizer.itos[3:] if not w.startswith("<motion_id_")]
    examples = []
    for _ in range(batch):
        prompt = " ".join(words[int(i)] for i in torch.randint(len(words), (text_tokens - 1,), generator=g))
        chosen = tuple(int(c) for c in torch.randint(512, (motion_codes,), generator=g))
        rejected = tuple(int(c) for c in torch.randint(512, (motion_codes,), generator=g))
        examples.append(Example(prompt, chosen, rejected))
    return examples


def tiny_tokenizer_lm(size, seed=0):
    from atom.mgpt.lm import MotionLM
    from atom.mgpt.tokenizer import WordTokenizer

    words = [f"w{i}" for i in range(300)]  # a procedural-world-sized word list
    return MotionLM.create(WordTokenizer(words), size, seed=seed)


# -- part 1: one mode in a child process ------------------------------------------------------


def child(mode: str, batch: int, steps: int, threads: int) -> dict:
    import torch

    from atom.mgpt.lm import T5Size
    from services.trainer.config import TrainConfig
    from services.trainer.lora import attach_lora, disable_dropout
    from services.trainer.train import batch_loss

    torch.set_num_threads(threads)
    lm = tiny_tokenizer_lm(T5Size())
    disable_dropout(lm.model)
    # The step this benchmark names: IPO (the trainer's default loss is TrainSettings().algorithm).
    config = TrainConfig(pairs_key="x", output_prefix="y", batch_size=batch, loss="ipo")
    torch.manual_seed(0)
    peft_model = attach_lora(lm.model, config.lora)
    peft_model.train()
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr)
    examples = make_batch(lm, batch, TEXT_TOKENS, MOTION_CODES)
    device = torch.device("cpu")
    ids, mask = lm.encode_text([e.prompt for e in examples])
    chosen = lm.encode_motion([list(e.chosen) for e in examples])

    def forward():
        if mode == "ipo":
            return batch_loss(lm, peft_model, examples, config, device).loss
        return lm.loss(ids, mask, chosen)

    def step():
        loss = forward()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    param_ptrs = {p.untyped_storage().data_ptr() for p in peft_model.parameters()}
    rss_before = proc_status_kib("VmRSS") * 1024
    tracemalloc.start()
    saved, loss = saved_bytes(forward, param_ptrs)  # first step: measured forward, then backward
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del loss
    peak_rss = proc_status_kib("VmHWM") * 1024
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dt = (time.perf_counter() - t0) / steps
    n_params = sum(p.numel() for p in peft_model.parameters())
    return {
        "mode": mode,
        "batch": batch,
        "s_per_step": dt,
        "steps_per_s": 1 / dt,
        "peak_rss_above_start": peak_rss - rss_before,
        "saved_activation_bytes": saved,
        "tracemalloc_peak": py_peak,
        "params": n_params,
        "trainable": sum(p.numel() for p in params),
        "vocab": len(lm.tokenizer),
    }


def run_child(mode: str, batch: int, steps: int, threads: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--batch", str(batch), "--steps", str(steps), "--threads", str(threads)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- part 2: flan-t5-base ------------------------------------------------------------------------


def t5_param_count(
    vocab: int, d: int, ff: int, layers: int, dec_layers: int, heads: int, d_kv: int, buckets: int = 32, tied: bool = False
) -> int:
    inner = heads * d_kv
    attn = 4 * d * inner
    ffn = 3 * d * ff  # gated: wi_0, wi_1, wo
    enc = layers * (attn + ffn + 2 * d) + buckets * heads + d
    dec = dec_layers * (2 * attn + ffn + 3 * d) + buckets * heads + d
    emb = vocab * d * (1 if tied else 2)
    return enc + dec + emb


def lora_param_count(d: int, inner: int, layers: int, dec_layers: int, r: int) -> int:
    # q and v of every attention: encoder self, decoder self and cross
    modules = 2 * (layers + 2 * dec_layers)
    return modules * r * (d + inner)


def base_estimate(batch: int, pairs_measured: int = 2, overhead: float | None = None) -> dict:
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    from atom.mgpt.lm import MotionLM, untie_lm_head
    from atom.mgpt.tokenizer import WordTokenizer
    from services.trainer.config import TrainConfig
    from services.trainer.lora import attach_lora, disable_dropout
    from services.trainer.train import motion_logprobs

    vocab = 32100 + 515
    n_params = t5_param_count(vocab, d=768, ff=2048, layers=12, dec_layers=12, heads=12, d_kv=64)
    n_lora = lora_param_count(768, 768, 12, 12, 8)

    # Saved activations, measured: a random flan-t5-base-shaped model, 2 pairs, CPU.
    words = [f"w{i}" for i in range(vocab - 3 - 515)]
    tokenizer = WordTokenizer(words)
    # tie_word_embeddings and decoder_start_token_id are not T5Config fields: its __post_init__ takes them
    cfg = T5Config(
        vocab_size=len(tokenizer),
        d_model=768,
        d_ff=2048,
        num_layers=12,
        num_decoder_layers=12,  # type: ignore[call-arg]
        num_heads=12,
        d_kv=64,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = T5ForConditionalGeneration(cfg)
    untie_lm_head(model)  # flan-t5 has its own lm_head; transformers 5 would tie it
    build_s = time.perf_counter() - t0
    instantiated = sum(p.numel() for p in model.parameters())
    lm = MotionLM(model, tokenizer)
    disable_dropout(lm.model)
    config = TrainConfig(pairs_key="x", output_prefix="y")
    peft_model = attach_lora(lm.model, config.lora)
    peft_model.train()
    n_lora_inst = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    examples = make_batch(lm, pairs_measured, TEXT_TOKENS, MOTION_CODES)
    ids, mask = lm.encode_text([e.prompt for e in examples])
    labels = lm.encode_motion([list(e.chosen) for e in examples] + [list(e.rejected) for e in examples])
    ids2, mask2 = torch.cat([ids, ids]), torch.cat([mask, mask])
    param_ptrs = {p.untyped_storage().data_ptr() for p in peft_model.parameters()}
    t0 = time.perf_counter()
    saved, _ = saved_bytes(lambda: motion_logprobs(lm, ids2, mask2, labels, True), param_ptrs)
    fwd_s = time.perf_counter() - t0
    saved_per_pair = saved / pairs_measured

    seqs = 2 * batch
    motion_len = labels.shape[1]
    logits = seqs * motion_len * len(tokenizer) * 4
    out = {
        "params_formula": n_params,
        "params_instantiated": instantiated,
        "lora_formula": n_lora,
        "lora_instantiated": n_lora_inst,
        "build_s": build_s,
        "forward_s_2pairs": fwd_s,
        "text_len": ids.shape[1],
        "motion_len": motion_len,
        "saved_per_pair": saved_per_pair,
    }
    for name, wbytes, act_scale in (("fp32", 4, 1.0), ("bf16 weights+autocast (approx.)", 2, 0.5)):
        weights = instantiated * wbytes
        states = n_lora_inst * 4 * 4  # fp32 master weight, grad, Adam m and v
        acts = saved_per_pair * batch * act_scale
        transient = 2 * logits * act_scale
        out[name] = {
            "weights": weights,
            "adapter_states": states,
            "activations": acts,
            "transient": transient,
            "total": weights + states + acts + transient,
        }
        if overhead:
            out[name]["total_with_overhead"] = weights + states + (acts + transient) * overhead
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per mode (after one measured step)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-base", action="store_true", help="skip the flan-t5-base estimate")
    ap.add_argument("--child", choices=["sft", "ipo"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.batch, args.steps, args.threads)))
        return

    print(
        f"Part 1: LoRA preference step on CPU ({args.threads} thread(s)), default small MotionLM, "
        f"batch {args.batch}, text {TEXT_TOKENS} / motion {MOTION_CODES + 3} tokens"
    )
    sft = run_child("sft", args.batch, args.steps, args.threads)
    ipo = run_child("ipo", args.batch, args.steps, args.threads)
    print(f"  model: {sft['params'] / 1e6:.2f}M params, LoRA {sft['trainable']:,} trainable, vocab {sft['vocab']}")
    print(f"  {'mode':<5} {'s/step':>8} {'steps/s':>8} {'peak RSS +':>11} {'saved acts':>11} {'tracemalloc':>12}")
    for r in (sft, ipo):
        print(
            f"  {r['mode']:<5} {r['s_per_step']:8.3f} {r['steps_per_s']:8.2f} "
            f"{r['peak_rss_above_start'] / MiB:9.0f} MiB {r['saved_activation_bytes'] / MiB:7.0f} MiB "
            f"{r['tracemalloc_peak'] / MiB:9.2f} MiB"
        )
    print(
        f"  IPO / SFT: time x{ipo['s_per_step'] / sft['s_per_step']:.2f}, "
        f"peak RSS x{ipo['peak_rss_above_start'] / max(1, sft['peak_rss_above_start']):.2f}, "
        f"saved activations x{ipo['saved_activation_bytes'] / sft['saved_activation_bytes']:.2f}"
    )
    if args.skip_base:
        return

    print(f"\nPart 2: MotionGPT-base (flan-t5-base + 515 motion tokens) IPO + LoRA r8 q,v, batch {args.batch}")
    # Part 1's ratio of peak RSS to (saved activations + logits transient) carries the backward
    # pass's own temporaries and allocator slack over to the estimate.
    small_logits = 2 * args.batch * (MOTION_CODES + 3) * ipo["vocab"] * 4
    overhead = ipo["peak_rss_above_start"] / (ipo["saved_activation_bytes"] + 2 * small_logits)
    est = base_estimate(args.batch, overhead=overhead)
    print(
        f"  params: formula {est['params_formula'] / 1e6:.2f}M, instantiated {est['params_instantiated'] / 1e6:.2f}M; "
        f"LoRA formula {est['lora_formula']:,}, instantiated {est['lora_instantiated']:,}"
    )
    print(
        f"  saved activations measured on 2 pairs (text {est['text_len']}, motion {est['motion_len']} tokens): "
        f"{est['saved_per_pair'] / MiB:.1f} MiB per pair (model built in {est['build_s']:.1f} s)"
    )
    for name in ("fp32", "bf16 weights+autocast (approx.)"):
        e = est[name]
        print(
            f"  {name}: weights {e['weights'] / GB:.2f} GB + adapter/Adam {e['adapter_states'] / GB * 1000:.0f} MB + "
            f"activations {e['activations'] / GB:.2f} GB + logits transient {e['transient'] / GB:.2f} GB "
            f"= {e['total'] / GB:.2f} GB  (paper: ~{PAPER_GB:.0f} GB; ratio {e['total'] / GB / PAPER_GB:.2f})"
        )
        print(
            f"    x{overhead:.2f} part-1 overhead on activations + transient (CPU allocator, backward temporaries): "
            f"{e['total_with_overhead'] / GB:.2f} GB (ratio {e['total_with_overhead'] / GB / PAPER_GB:.2f})"
        )


if __name__ == "__main__":
    main()
