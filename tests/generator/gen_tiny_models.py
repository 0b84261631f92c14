"""Tiny MotionGPT-architecture models for fast tests (seconds on one CPU core)."""

import numpy as np
import torch

from atom.mgpt.bundle import ModelBundle
from atom.mgpt.lm import MotionLM, T5Size
from atom.mgpt.tokenizer import WordTokenizer
from atom.mgpt.vqvae import VQVAE, VQVAEConfig

CAPTIONS = [
    "a person walks forward.",
    "a man jumps in place, then squats.",
    "someone turns left and waves",
    "a person kicks two times",
]
TINY_VQ = VQVAEConfig(width=32, code_dim=16, num_codes=512, res_depth=2)
TINY_T5 = T5Size(d_model=32, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2, d_kv=16, dropout_rate=0.0)


def make_tiny_bundle(seed: int = 0) -> ModelBundle:
    torch.manual_seed(seed)
    vq = VQVAE(TINY_VQ)
    with torch.no_grad():
        vq.quantizer.codebook.normal_()
    lm = MotionLM.create(WordTokenizer.build(CAPTIONS), TINY_T5, seed=seed)
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=263).astype(np.float32) * 0.1
    std = rng.random(263).astype(np.float32) * 0.2 + 0.05
    return ModelBundle(vqvae=vq, lm=lm, mean=mean, std=std, info={"name": "tiny-test"})
