"""Each rule the real path follows, stated as MotionGPT's code behaves (OpenMotionLab/MotionGPT:
mGPT/archs/mgpt_lm.py, mGPT/models/mgpt.py, mGPT/data/humanml/dataset_t2m*.py, mGPT/metrics/t2m.py)
and checked against files in the released formats (realfiles.py)."""

import io
import pickle
import pickletools
import zipfile

import numpy as np
import pytest
import torch

from atom import evalplan
from atom.mgpt.checkpoint import CheckpointError, UnsafePickleError, find_assets, load_motiongpt, safe_load
from atom.motion.humanml3d import Caption, Clip, HumanML3D, write_clip, write_split
from atom.runtime.device import DeviceError, resolve_compute
from atom.safe_pickle import Opaque
from services.evaluator import guo
from services.evaluator.glove import GloveFormatError, WordVectorizer
from services.evaluator.motiongpt_protocol import embed_items, general_rounds, motion_for
from services.evaluator.records import ModelSample

import realfiles


# -- loading the released files ----------------------------------------------------------------------


def test_protocol2_checkpoint_with_omegaconf_loads_without_running_it(release):
    data = zipfile.ZipFile(release["checkpoint"]).read(
        next(n for n in zipfile.ZipFile(release["checkpoint"]).namelist() if n.endswith("data.pkl"))
    )
    names = {str(arg) for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}
    assert any(n.startswith("__builtin__ ") for n in names)  # what torch.save's protocol 2 writes
    assert any(n.startswith("omegaconf.") for n in names)
    obj = safe_load(release["checkpoint"])
    cfg = obj["hyper_parameters"]["cfg"]
    assert isinstance(cfg, Opaque) and type(cfg).__name__ == "DictConfig"  # inert: OmegaConf never ran
    assert obj["global_step"] == 123456 and isinstance(obj["state_dict"]["vae.quantizer.codebook"], torch.Tensor)


def test_loader_refuses_code_compression_and_oversize(tmp_path, release, monkeypatch):
    class Evil:
        def __reduce__(self):
            return (eval, ("1+1",))

    torch.save({"state_dict": {}, "x": Evil()}, tmp_path / "evil.tar")
    with pytest.raises(UnsafePickleError, match="builtins.eval"):
        safe_load(tmp_path / "evil.tar")
    # A zip with a compressed entry is not what torch.save writes (and could expand without bound).
    with zipfile.ZipFile(release["checkpoint"]) as src, zipfile.ZipFile(tmp_path / "deflated.tar", "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    with pytest.raises(UnsafePickleError, match="compressed"):
        safe_load(tmp_path / "deflated.tar")
    monkeypatch.setenv("ATOM_CHECKPOINT_MAX_BYTES", "1000")
    with pytest.raises(UnsafePickleError, match="ATOM_CHECKPOINT_MAX_BYTES"):
        safe_load(release["checkpoint"])


def test_normalisation_is_motiongpts_meta_never_humanml3ds(tmp_path, release, humanml):
    # Found next to the checkpoint in MotionGPT's deps/ layout.
    found = find_assets(release["checkpoint"])
    assert found.mean == release["mean_std"] / "mean.npy" and found.t5_dir == release["t5_dir"]
    # deps/, deps/t2m or the meta folder itself all resolve to the same files.
    for given in (release["deps"], release["deps"] / "t2m", release["mean_std"]):
        assert find_assets(release["checkpoint"], release["t5_dir"], given).std == release["mean_std"] / "std.npy"
    # HumanML3D's Mean.npy/Std.npy are refused with the reason.
    with pytest.raises(CheckpointError, match="Mean.npy/Std.npy"):
        find_assets(release["checkpoint"], release["t5_dir"], humanml)
    # A checkpoint away from its deps/ and no flag: the import stops and names the flag.
    lone = tmp_path / "motiongpt_s3_h3d.tar"
    lone.write_bytes(release["checkpoint"].read_bytes())
    with pytest.raises(CheckpointError, match="--t5-dir"):
        find_assets(lone)
    with pytest.raises(CheckpointError, match="--mean-std"):
        find_assets(lone, release["t5_dir"])
    bundle = load_motiongpt(found.checkpoint, found.t5_dir, found.mean, found.std)
    assert np.array_equal(bundle.std, np.load(found.std)) and not np.allclose(bundle.std, np.load(humanml / "Std.npy"))


def test_weights_match_the_checkpoint(release):
    """The imported model computes what the checkpoint's T5 computes (its state dict, loaded by
    transformers directly), and the VQ-VAE holds the checkpoint's codebook."""
    from transformers import T5Config, T5ForConditionalGeneration

    a = find_assets(release["checkpoint"])
    bundle = load_motiongpt(a.checkpoint, a.t5_dir, a.mean, a.std)
    sd = safe_load(a.checkpoint)["state_dict"]
    assert torch.equal(bundle.vqvae.quantizer.codebook, sd["vae.quantizer.codebook"])
    cfg = T5Config.from_pretrained(str(a.t5_dir))
    cfg.vocab_size = sd["lm.language_model.shared.weight"].shape[0]
    ref = T5ForConditionalGeneration(cfg)
    ref.lm_head.weight = torch.nn.Parameter(ref.lm_head.weight.detach().clone())
    ref.load_state_dict({k[len("lm.language_model.") :]: v for k, v in sd.items() if k.startswith("lm.language_model.")}, strict=False)
    ref.eval()
    tok = realfiles.motion_tokenizer(a.t5_dir)
    enc = tok(['Generate motion: "a person walks forward"'], return_tensors="pt")
    ours_ids, _ = bundle.lm.encode_text(['Generate motion: "a person walks forward"'])
    assert ours_ids.tolist() == enc.input_ids.tolist()  # the same input ids as MotionGPT's tokenizer
    dec = torch.tensor([[0, tok.convert_tokens_to_ids("<motion_id_512>")]])
    with torch.no_grad():
        assert torch.allclose(
            bundle.lm.model(input_ids=enc.input_ids, decoder_input_ids=dec).logits,
            ref(input_ids=enc.input_ids, decoder_input_ids=dec).logits,
            atol=1e-5,
        )


def test_glove_index_with_numpy_integers(release):
    vec = WordVectorizer.from_dir(release["deps"] / "glove")
    assert all(type(i) is int for i in vec.word_index.values())
    # ... while anything but numbers in the index is still refused.
    evil = pickle.dumps({"a": np.array([1, 2], dtype=object)}, protocol=2)
    npy = io.BytesIO()
    np.save(npy, np.zeros((1, 300), np.float32))
    with pytest.raises(GloveFormatError, match="refusing"):
        WordVectorizer.from_bytes(npy.getvalue(), pickle.dumps(["a"]), evil)


# -- decoding ----------------------------------------------------------------------------------------


def test_motiongpt_decoding_draws_from_what_transformers_generate_draws_from(release):
    """MotionGPT calls generate(do_sample=True, max_length=128) with the model's generation config:
    transformers then samples from the top 50 logits of the whole vocabulary. Our sampler's
    distribution at every step equals the one generate() sampled from."""
    from transformers import GenerationConfig

    from services.generator.sampling import SamplingConfig, _filter_probs

    a = find_assets(release["checkpoint"])
    bundle = load_motiongpt(a.checkpoint, a.t5_dir, a.mean, a.std)
    model = bundle.lm.model
    gen_cfg = GenerationConfig.from_pretrained(str(a.t5_dir))
    ids, mask = bundle.lm.encode_text(["Generate motion: a person jumps twice"])
    torch.manual_seed(0)
    out = model.generate(
        ids,
        attention_mask=mask,
        do_sample=True,
        max_length=128,
        generation_config=gen_cfg,
        output_scores=True,
        output_logits=True,
        return_dict_in_generate=True,
    )
    assert out.sequences.shape[1] <= 128 and out.sequences[0, 0] == 0  # the decoder's start token, not forced 512
    cfg = SamplingConfig.motiongpt()
    for raw, processed in zip(out.logits, out.scores):
        ours = _filter_probs(raw[0], cfg)
        theirs = torch.softmax(processed[0].double(), -1)
        assert int((ours > 0).sum()) == int((theirs > 0).sum()) == 50
        assert torch.allclose(ours, theirs, atol=1e-6)


# -- the evaluation protocol -------------------------------------------------------------------------


def _clip(cid: str, n: int, captions) -> Clip:
    rng = np.random.default_rng(len(cid) + n)
    return Clip(cid, None, rng.normal(size=(n, 263)).astype(np.float32), tuple(captions))


def test_items_follow_motiongpts_loader(tmp_path):
    whole = Caption.from_text("a person walks")
    timed = Caption("a person jumps", ("a/DET", "person/NOUN", "jump/VERB"), 0.5, 3.0)  # 10..60: 50 frames
    short = Caption("a person waves", ("a/DET",), 1.0, 2.0)  # 20 frames: too short for an item
    clips = [
        _clip("long", 200, [whole]),  # 200 frames: the whole file is skipped ...
        _clip("longtimed", 210, [timed]),  # ... with its timed captions
        _clip("a", 120, [whole, timed, short]),
        _clip("b", 60, [timed]),  # only a timed caption: no whole-clip item
        _clip("c", 60, [whole, Caption.from_text("someone walks")]),
    ]
    for c in clips:
        write_clip(tmp_path, c)
    write_split(tmp_path, "test", [c.clip_id for c in clips])
    items = evalplan.motiongpt_items(HumanML3D(tmp_path), "test")
    got = [(it.item_id, it.length, len(it.captions)) for it in items]
    # Ordered by length; ties keep file order (a's timed item, then b's, then c).
    assert got == [("a#1", 50, 1), ("b#0", 50, 1), ("c", 60, 2), ("a", 120, 1)]
    assert items[0].start == 10 and items[0].end == 60


def test_draws_single_and_double_unit_crops():
    item = evalplan.EvalItem("x", "x", 0, 103, (Caption.from_text("a"), Caption.from_text("b"), Caption.from_text("c")))
    lens, caps = [], []
    for rep in range(3000):
        d = evalplan.general_draws([item], rep, 0)[0]
        assert 0 <= d.crop_start <= 103 - d.crop_len
        lens.append(d.crop_len)
        caps.append(d.caption)
    assert set(lens) == {100, 96}  # (103 // 4) * 4 and (103 // 4 - 1) * 4
    assert 0.30 < lens.count(96) / len(lens) < 0.37  # "double" one time in three
    assert set(caps) == {0, 1, 2}
    assert evalplan.general_draws([item] * 5, 3, 7) == evalplan.general_draws([item] * 5, 3, 7)


def test_zero_motion_and_cut_to_crop():
    pad = np.arange(263, dtype=np.float32)
    one = ModelSample("t", "general", "p", features=np.ones((4, 263)), num_tokens=1)
    empty = ModelSample("t", "general", "p", features=np.zeros((0, 263)), num_tokens=0)
    long = ModelSample("t", "general", "p", features=np.ones((80, 263)), num_tokens=20)
    for s in (one, empty, None):
        z = motion_for(s, 48, pad)
        assert z.shape == (48, 263) and np.array_equal(z[7], pad)  # the zero motion: the mean pose, crop long
    assert motion_for(long, 48, pad).shape == (48, 263)  # cut to the real crop's length


def _guo():
    torch.manual_seed(0)
    mods = guo.build_modules()
    vec = WordVectorizer(np.random.default_rng(0).normal(size=(3, 300)), {"unk": 0, "sos": 1, "eos": 2})
    return guo.GuoEvaluator(mods["text_encoder"], mods["movement_encoder"], mods["motion_encoder"], vec, np.zeros(263), np.ones(263))


def test_unpacked_batches_padded_with_the_mean_pose():
    ev = _guo()
    rng = np.random.default_rng(0)
    m = [rng.normal(size=(40, 263)).astype(np.float32), rng.normal(size=(64, 263)).astype(np.float32)]
    pad = rng.normal(size=263).astype(np.float32)
    batch = embed_items(ev, m, [40, 64], pad)
    alone = embed_items(ev, m[:1], [40], pad)
    # Unpacked: the 40-frame motion padded to its batch's 64 frames embeds differently from alone ...
    assert not np.allclose(batch[0], alone[0], atol=1e-4)
    # ... exactly as that motion with the mean pose written into frames 40..63.
    manual = np.concatenate([m[0], np.repeat(pad[None], 24, axis=0)])
    assert np.allclose(batch[0], embed_items(ev, [manual], [64], pad)[0], atol=1e-5)
    # Guo's original protocol (packed by length) does not depend on the batch.
    assert np.allclose(ev.embed_motions(m)[0], ev.embed_motions(m[:1])[0], atol=1e-5)


def test_fid_against_the_same_items_crops(tmp_path):
    """A model that returns each item's real crop exactly has FID ~0 in every replication: FID
    compares with this replication's crops of the same items, not with the whole test set."""
    ev = _guo()
    rng = np.random.default_rng(1)
    items = [
        evalplan.EvalItem(f"i{k}", f"i{k}", 0, int(n), (Caption.from_text("a person walks"),))
        for k, n in enumerate(rng.integers(40, 120, size=40))
    ]
    real = [rng.normal(size=(it.length, 263)).astype(np.float32) for it in items]
    samples = []
    for rep in range(2):
        for d in evalplan.general_draws(items, rep, 0):
            crop = real[d.item][d.crop_start : d.crop_start + d.crop_len]
            samples.append(
                ModelSample(
                    "a person walks",
                    "general",
                    items[d.item].item_id,
                    features=crop,
                    kind="general",
                    item=items[d.item].item_id,
                    replication=rep,
                    num_tokens=20,
                )
            )
    rounds = general_rounds({"copy": samples}, items, real, ev, np.zeros(263, np.float32), replications=2, seed=0, mm_texts=0)
    assert all(abs(r["fid"]) < 1e-3 for r in rounds["copy"])
    assert all(r["r1"] == rr["r1"] for r, rr in zip(rounds["copy"], rounds["real"]))


# -- devices -----------------------------------------------------------------------------------------


def test_device_choice():
    assert resolve_compute("auto").device in ("cpu", "cuda:0")
    assert resolve_compute("cpu", "bf16").dtype == "bf16"
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA device"):
            resolve_compute("cuda")
        with pytest.raises(DeviceError, match="fp16 needs a GPU"):
            resolve_compute("cpu", "fp16")
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_compute("tpu")
