"""MotionGPT-base at full size on this machine's device: generation throughput and LoRA + IPO
training cost, with random weights (the architecture, not the released weights, sets the cost).

The model is built as MotionGPT's: flan-t5-base (d_model 768, d_ff 2048 gated-GELU, 12+12 layers,
12 heads, untied head) with 32100 + 515 tokens, and the VQ-VAE (512 wide, 512 codes of 512). It
runs through the same code the services run: `sample_motions` with MotionGPT's decoding (top-k 50
over the whole vocabulary, up to 127 new tokens, stop at `</s>`; random weights rarely write it,
so most samples take all 127 steps: an upper bound on a trained model's cost), and the trainer's
`batch_loss` with LoRA r 8 on q, v and the IPO loss (AdamW step included).

  python benchmarks/gpu_check.py                    # on CUDA when available, else a short CPU check
  python benchmarks/gpu_check.py --device cpu --dtype fp32 --gen-batches 1,8 --train-batches 8

On a GPU it prints motions/s at batch 1, 8, 32, 128 and IPO steps/s with peak memory at batch 8 and
32. On a CPU it runs one small batch of each (batch 1 and 2) and says so: the figures show the path
works, not what a GPU does.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

FLAN_T5_BASE: dict[str, Any] = dict(
    d_model=768, d_ff=2048, num_layers=12, num_decoder_layers=12, num_heads=12, d_kv=64, feed_forward_proj="gated-gelu", dropout_rate=0.0
)
FLAN_VOCAB = 32100  # tokenizer entries (sentencepiece 32000 + 100 sentinels)


def build_bundle(device: str, dtype: torch.dtype):
    from transformers import T5Config, T5ForConditionalGeneration

    from atom.mgpt.bundle import ModelBundle
    from atom.mgpt.lm import MotionLM, untie_lm_head
    from atom.mgpt.tokenizer import WordTokenizer
    from atom.mgpt.vqvae import VQVAE, VQVAEConfig

    # A word tokenizer of flan's size stands for the sentencepiece one: the model's cost depends on
    # the vocabulary size and the sequence lengths, not on how text is split.
    tok = WordTokenizer([f"w{i}" for i in range(FLAN_VOCAB - len(WordTokenizer.SPECIALS))])
    torch.manual_seed(0)
    # decoder_start_token_id and tie_word_embeddings are not T5Config fields: its __post_init__ takes them
    cfg = T5Config(
        vocab_size=len(tok),
        pad_token_id=tok.pad_id,
        eos_token_id=tok.eos_id,  # type: ignore[call-arg]
        decoder_start_token_id=tok.pad_id,
        tie_word_embeddings=False,
        **FLAN_T5_BASE,
    )
    t5 = T5ForConditionalGeneration(cfg)
    untie_lm_head(t5)
    vq = VQVAE(VQVAEConfig())
    with torch.no_grad():
        vq.quantizer.codebook.normal_()
    bundle = ModelBundle(
        vqvae=vq, lm=MotionLM(t5, tok), mean=torch.zeros(263).numpy(), std=torch.ones(263).numpy(), info={"decoding": "motiongpt"}
    )
    bundle.to(device)
    bundle.lm.model.to(dtype)
    return bundle


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_mib(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None


def generation(bundle, device: str, batch: int, repeats: int) -> dict:
    from services.generator.sampling import sample_motions

    prompts = ["a person walks forward, then jumps twice and waves"] * batch
    sample_motions(bundle, prompts[:1], [0], decoding="motiongpt", batch_size=1)  # warm-up
    sync(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    tokens = 0
    for r in range(repeats):
        ms = sample_motions(bundle, prompts, list(range(r * batch, (r + 1) * batch)), decoding="motiongpt", batch_size=batch)
        tokens += sum(len(m.raw_ids) for m in ms)
    sync(device)
    dt = time.perf_counter() - t0
    n = batch * repeats
    return {
        "batch": batch,
        "motions": n,
        "seconds": round(dt, 3),
        "motions_per_s": round(n / dt, 3),
        "new_tokens_per_motion": round(tokens / n, 1),
        "peak_mib": peak_mib(device),
    }


def training(bundle, device: str, batch: int, steps: int, dtype: str) -> dict:
    from services.trainer.config import LoraSettings, TrainConfig
    from services.trainer.lora import attach_lora, disable_dropout
    from services.trainer.train import Example, batch_loss

    import numpy as np

    rng = np.random.default_rng(0)
    examples = [
        Example(
            "Generate motion: a person walks forward, then jumps twice and waves",
            tuple(int(c) for c in rng.integers(512, size=rng.integers(20, 49))),
            tuple(int(c) for c in rng.integers(512, size=rng.integers(20, 49))),
        )
        for _ in range(batch)
    ]
    config = TrainConfig(
        pairs_key="bench",
        output_prefix="bench",
        base_model="bench",
        loss="ipo",
        beta=0.1,
        batch_size=batch,
        lora=LoraSettings(),
        device=device,
        dtype=dtype,
    )
    model = bundle.lm.model
    model.to(torch.float32)  # LoRA trains in float32 weights; dtype applies through autocast
    disable_dropout(model)
    peft_model = attach_lora(model, config.lora)
    peft_model.to(device)
    peft_model.train()
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-3)
    dev = torch.device(device)

    def step():
        out = batch_loss(bundle.lm, peft_model, examples, config, dev)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        return float(out.loss.detach())

    step()  # warm-up (kernels, allocator)
    sync(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sync(device)
    dt = time.perf_counter() - t0
    peft_model.unload()  # the base model back as it was, for the next batch size
    return {
        "batch_pairs": batch,
        "steps": steps,
        "seconds": round(dt, 3),
        "steps_per_s": round(steps / dt, 4),
        "pairs_per_s": round(steps * batch / dt, 2),
        "peak_mib": peak_mib(device),
        "loss": round(loss, 4),
    }


def main(argv=None) -> int:
    from atom.runtime.device import resolve_compute

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="", help="fp32, bf16 or fp16 (default: bf16 on a GPU that has it, else fp32)")
    ap.add_argument("--gen-batches", default="", help="comma-separated (default 1,8,32,128 on a GPU, 1,2 on a CPU)")
    ap.add_argument("--train-batches", default="", help="comma-separated (default 8,32 on a GPU, 2 on a CPU)")
    ap.add_argument("--repeats", type=int, default=0, help="generation calls per batch size (default 3 GPU, 1 CPU)")
    ap.add_argument("--steps", type=int, default=0, help="timed training steps per batch size (default 10 GPU, 1 CPU)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    probe = resolve_compute(args.device, "fp32")
    gpu = probe.is_cuda
    dtype = args.dtype or ("bf16" if gpu and torch.cuda.is_bf16_supported() else "fp32")
    compute = resolve_compute(args.device, dtype)
    gen_batches = [int(b) for b in (args.gen_batches or ("1,8,32,128" if gpu else "1,2")).split(",")]
    train_batches = [int(b) for b in (args.train_batches or ("8,32" if gpu else "2")).split(",")]
    repeats, steps = args.repeats or (3 if gpu else 1), args.steps or (10 if gpu else 1)
    print(f"device {compute.device} ({compute.describe().get('gpu', 'CPU')}), dtype {compute.dtype}; torch {torch.__version__}")
    if not gpu:
        print("no GPU here: one small batch of each, to show the full-size path works on this machine; these are not GPU figures")
    t0 = time.perf_counter()
    bundle = build_bundle(compute.device, compute.torch_dtype)
    params = sum(p.numel() for p in bundle.lm.model.parameters()) + sum(p.numel() for p in bundle.vqvae.parameters())
    print(f"MotionGPT-base architecture, random weights: {params / 1e6:.1f} M parameters, built in {time.perf_counter() - t0:.1f} s")
    result = {"device": compute.describe(), "torch": torch.__version__, "parameters": params, "generation": [], "training": []}
    print("\ngeneration (MotionGPT decoding)\n  batch  motions/s  new tokens/motion  seconds  peak MiB")
    for b in gen_batches:
        g = generation(bundle, compute.device, b, repeats)
        result["generation"].append(g)
        print(
            f"  {b:5d}  {g['motions_per_s']:9.3f}  {g['new_tokens_per_motion']:17.1f}  {g['seconds']:7.2f}  "
            f"{g['peak_mib'] if g['peak_mib'] is not None else '-'}"
        )
    print("\nLoRA (r 8, q/v) + IPO training\n  pairs  steps/s  pairs/s  seconds  peak MiB")
    for b in train_batches:
        t = training(bundle, compute.device, b, steps, compute.dtype)
        result["training"].append(t)
        print(
            f"  {b:5d}  {t['steps_per_s']:7.3f}  {t['pairs_per_s']:7.2f}  {t['seconds']:7.2f}  "
            f"{round(t['peak_mib']) if t['peak_mib'] is not None else '-'}"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
