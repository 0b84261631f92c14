"""Small files in the formats a real user has, built by the tests (nothing here is downloaded):

- a flan-t5 tokenizer folder: a `spiece.model` trained with sentencepiece on motion captions, the
  100 `<extra_id_*>` sentinels, `tokenizer_config.json`, `config.json` (a small T5 with flan's
  gated-GELU and untied head) and `generation_config.json`;
- MotionGPT's released checkpoint layout (`motiongpt_s3_h3d.tar`): a PyTorch Lightning dict written
  with `torch.save` (pickle protocol 2) whose `state_dict` holds `vae.*` (MotionGPT's VQ-VAE key
  layout), `lm.language_model.*` (the T5 resized to the tokenizer with its 515 motion tokens),
  `metrics.*` and `_losses.*`, and whose `hyper_parameters` hold a real OmegaConf config;
- MotionGPT's `deps/` layout: the VQ-VAE's normalisation (`t2m/t2m/VQVAEV3_CB1024_CMT_H1024_NRES3/
  meta`), the Guo et al. evaluator (`t2m/t2m/text_mot_match/model/finest.tar`,
  `t2m/t2m/Comp_v6_KLD01/meta`) with random weights, GloVe files (`glove/our_vab_*`, the index
  holding numpy integers as numpy writes it) and `flan-t5-base/`;
- a HumanML3D directory (the procedural world written in that layout, without the world's own
  label files, with some captions over a time range as HumanML3D has).

The T5 is trained for a few seconds to write well-formed motion strings (`<motion_id_512>` codes
`<motion_id_513>`), so MotionGPT's decoding and parse have something to parse; its weights are
otherwise meaningless.
"""

from __future__ import annotations

import io
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import torch

from atom.mgpt.vqvae import VQVAE, VQVAEConfig
from atom.motion.humanml3d import HumanML3D
from services.evaluator import guo

VQ_META = Path("t2m/t2m/VQVAEV3_CB1024_CMT_H1024_NRES3/meta")
EVAL_META = Path("t2m/t2m/Comp_v6_KLD01/meta")
FINEST = Path("t2m/t2m/text_mot_match/model/finest.tar")
SMALL_VQ = VQVAEConfig(width=48, code_dim=32, num_codes=512, res_depth=3)
EXTRA_IDS = 100


# -- HumanML3D ----------------------------------------------------------------------------------------


def build_humanml3d(root: Path, clips: int = 400, seed: int = 3) -> Path:
    """The procedural world in HumanML3D's layout, made to look like the release: no labels/, and
    every fourth test clip gets a second caption over a time range."""
    from atom.motion.world.corpus import build_corpus

    build_corpus(root, clips, seed)
    shutil.rmtree(root / "labels", ignore_errors=True)
    (root / "world.json").unlink(missing_ok=True)
    ds = HumanML3D(root)
    for n, cid in enumerate(ds.split_ids("test")):
        if n % 4:
            continue
        length = ds.load_features(cid).shape[0]
        path = root / "texts" / f"{cid}.txt"
        first = path.read_text().splitlines()[0]
        text, tokens, _, _ = first.split("#")
        # A span of at least 40 frames (2 s) inside the clip, written as the release writes times.
        end = min(length / 20.0, 2.5)
        path.write_text(path.read_text() + f"{text}#{tokens}#0.25#{end}\n")
    return root


def caption_texts(root: Path, limit: int = 400) -> list[str]:
    out = []
    for p in sorted((root / "texts").glob("*.txt"))[:limit]:
        out += [line.split("#", 1)[0] for line in p.read_text().splitlines() if line.strip()]
    return out


# -- flan-t5 ------------------------------------------------------------------------------------------


def build_flan_dir(path: Path, texts: list[str], d_model: int = 64) -> Path:
    """A flan-t5-base look-alike folder: sentencepiece model, sentinels, configs."""
    import sentencepiece as spm
    from transformers import T5Config

    path.mkdir(parents=True, exist_ok=True)
    corpus = [f'Generate motion: "{t}"' for t in texts] + list(texts)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_writer=model,
        vocab_size=400,
        hard_vocab_limit=False,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        pad_piece="<pad>",
        eos_piece="</s>",
        unk_piece="<unk>",
        character_coverage=1.0,
        minloglevel=2,
        num_threads=1,
    )
    (path / "spiece.model").write_bytes(model.getvalue())
    extra = [f"<extra_id_{i}>" for i in range(EXTRA_IDS)]
    special = {"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>", "additional_special_tokens": extra}
    (path / "special_tokens_map.json").write_text(json.dumps(special))
    (path / "tokenizer_config.json").write_text(
        json.dumps({**special, "tokenizer_class": "T5Tokenizer", "extra_ids": EXTRA_IDS, "model_max_length": 512})
    )
    import sentencepiece

    pieces = sentencepiece.SentencePieceProcessor(model_proto=model.getvalue()).get_piece_size()
    # flan's embedding is padded past the tokenizer (32128 rows for 32100 tokens): so is this one.
    T5Config(
        vocab_size=pieces + EXTRA_IDS + 28,
        d_model=d_model,
        d_ff=2 * d_model,
        num_layers=2,
        num_heads=4,
        d_kv=16,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    ).save_pretrained(str(path))
    (path / "generation_config.json").write_text(json.dumps({"decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0}))
    return path


def motion_tokenizer(flan_dir: Path):
    """The tokenizer as MotionGPT builds it: flan's, plus 515 ordinary motion tokens."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(flan_dir), legacy=True)
    tok.add_tokens([f"<motion_id_{i}>" for i in range(515)])
    return tok


# -- the checkpoint -----------------------------------------------------------------------------------


def _format_trained_t5(flan_dir: Path, texts: list[str], steps: int, seed: int):
    """A T5 resized to the motion vocabulary, trained briefly to answer with motion strings."""
    from transformers import T5Config, T5ForConditionalGeneration

    tok = motion_tokenizer(flan_dir)
    cfg = T5Config.from_pretrained(str(flan_dir))
    torch.manual_seed(seed)
    t5 = T5ForConditionalGeneration(cfg)
    t5.resize_token_embeddings(len(tok))  # what MotionGPT's MLM does
    if t5.lm_head.weight is t5.shared.weight:
        t5.lm_head.weight = torch.nn.Parameter(t5.shared.weight.detach().clone())
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(t5.parameters(), lr=3e-3)
    t5.train()
    for _ in range(steps):
        batch = [texts[int(i)] for i in rng.integers(len(texts), size=16)]
        motions = [
            "<motion_id_512>" + "".join(f"<motion_id_{int(c)}>" for c in rng.integers(512, size=rng.integers(8, 30))) + "<motion_id_513>"
            for _ in batch
        ]
        enc = tok([f"Generate motion: {t}" for t in batch], return_tensors="pt", padding=True)
        lab = tok(motions, return_tensors="pt", padding=True).input_ids
        lab[lab == tok.pad_token_id] = -100
        loss = t5(input_ids=enc.input_ids, attention_mask=enc.attention_mask, labels=lab).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return t5.eval()


def build_checkpoint(path: Path, flan_dir: Path, texts: list[str], steps: int = 120, seed: int = 0) -> dict:
    """motiongpt_s3_h3d.tar in the released layout; returns the state dict it holds."""
    from omegaconf import OmegaConf

    torch.manual_seed(seed)
    vq = VQVAE(SMALL_VQ)
    with torch.no_grad():
        vq.quantizer.codebook.normal_()
    t5 = _format_trained_t5(flan_dir, texts, steps, seed)
    sd = {}
    for k, v in vq.state_dict().items():
        sd["vae." + k] = v.detach().clone()
    for k, v in t5.state_dict().items():
        sd["lm.language_model." + k] = v.detach().clone()
    sd["metrics.TM2TMetrics.t2m_textencoder.input_emb.weight"] = torch.randn(512, 300)
    sd["metrics.TM2TMetrics.t2m_moveencoder.main.0.weight"] = torch.randn(512, 259, 4)
    sd["_losses.losses_train.total"] = torch.zeros(())
    cfg = OmegaConf.create(
        {
            "NAME": "Instruct_HumanML3D",
            "model": {
                "target": "mGPT.models.mgpt.MotionGPT",
                "params": {
                    "condition": "text",
                    "task": "t2m",
                    "codebook_size": 512,
                    "lm": {"model_type": "t5", "max_length": 256},
                    "motion_vae": {"code_num": 512, "nfeats": 263},
                },
            },
            "TRAIN": {"STAGE": "lm_instruct", "BATCH_SIZE": 16, "OPTIM": {"params": {"lr": 1e-4, "betas": [0.9, 0.99]}}},
            "TEST": {"BATCH_SIZE": 32, "REPLICATION_TIMES": 20},
            "DATASET": {"NFEATS": 263},
        }
    )
    ckpt = {
        "epoch": 999,
        "global_step": 123456,
        "pytorch-lightning_version": "1.8.6",
        "state_dict": sd,
        "hparams_name": "kwargs",
        "hyper_parameters": {"cfg": cfg, "codebook_size": 512, "condition": "text"},
        "loops": {},
        "callbacks": {"ModelCheckpoint{'monitor': None}": {"best_model_path": "", "dirpath": "ckpt"}},
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.99), "params": [0, 1]}]}],
        "lr_schedulers": [],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, str(path))  # pickle protocol 2, as Lightning writes it
    return sd


# -- MotionGPT's deps/ --------------------------------------------------------------------------------


def _write_glove(folder: Path, words: list[str], seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    vecs = np.random.default_rng(seed).normal(size=(len(words), 300)).astype(np.float32)
    np.save(folder / "our_vab_data.npy", vecs)
    (folder / "our_vab_words.pkl").write_bytes(pickle.dumps(list(words), protocol=2))
    # Written from numpy, as the release's index was: numpy integers, not Python ints.
    (folder / "our_vab_idx.pkl").write_bytes(pickle.dumps({w: np.int64(i) for i, w in enumerate(words)}, protocol=2))


def build_deps(deps: Path, humanml: Path, texts: list[str], seed: int = 0) -> Path:
    """MotionGPT's deps/ folder: flan-t5-base, the VQ-VAE's and the evaluator's normalisation, the
    Guo evaluator and GloVe. The VQ-VAE's std differs from HumanML3D's Std.npy (rescaled per
    feature group, as the T2M release's is), so using the wrong file shows."""
    build_flan_dir(deps / "flan-t5-base", texts)
    ds = HumanML3D(humanml)
    ms = ds.mean_std()
    for folder, scale in ((VQ_META, 5.0), (EVAL_META, 2.0)):
        (deps / folder).mkdir(parents=True, exist_ok=True)
        std = ms.std.copy()
        std[4:67] *= scale  # the release scales groups of features (e.g. joint positions)
        np.save(deps / folder / "mean.npy", ms.mean.astype(np.float32))
        np.save(deps / folder / "std.npy", std.astype(np.float32))
    torch.manual_seed(seed)
    mods = guo.build_modules()
    (deps / FINEST).parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: m.state_dict() for k, m in mods.items()} | {"epoch": 270, "iter": 123}, deps / FINEST)
    words = sorted(
        {tok.rpartition("/")[0] for cid in ds.all_ids() for cap in ds.load_captions(cid) for tok in cap.tokens} | {"unk", "sos", "eos"}
    )
    _write_glove(deps / "glove", words, seed)
    return deps


def build_motiongpt_release(root: Path, humanml: Path, seed: int = 0) -> dict[str, Path]:
    """A MotionGPT checkout's files: checkpoints/MotionGPT-base/motiongpt_s3_h3d.tar beside deps/."""
    texts = caption_texts(humanml)
    deps = build_deps(root / "deps", humanml, texts, seed)
    ckpt = root / "checkpoints" / "MotionGPT-base" / "motiongpt_s3_h3d.tar"
    build_checkpoint(ckpt, deps / "flan-t5-base", texts, seed=seed)
    return {"checkpoint": ckpt, "deps": deps, "t5_dir": deps / "flan-t5-base", "mean_std": deps / VQ_META}
