import pickle

import numpy as np
import pytest
import torch

from services.evaluator import guo
from services.evaluator.glove import (
    GloveFormatError,
    POS_CLASSES,
    WordVectorizer,
    caption_tokens,
    safe_unpickle,
)

WORDS = ["unk", "sos", "eos", "a", "person", "walk", "forward", "then", "squat", "jump", "twice", "the", "man"]


def write_glove(d, words=WORDS, seed=0):
    d.mkdir(parents=True, exist_ok=True)
    vecs = np.random.default_rng(seed).normal(size=(len(words), 300)).astype(np.float32)
    np.save(d / "our_vab_data.npy", vecs)
    (d / "our_vab_words.pkl").write_bytes(pickle.dumps(list(words)))
    (d / "our_vab_idx.pkl").write_bytes(pickle.dumps({w: i for i, w in enumerate(words)}))
    return vecs


def full_checkpoint(seed=0):
    torch.manual_seed(seed)
    mods = guo.build_modules()
    return {k: m.state_dict() for k, m in mods.items()} | {"epoch": 12, "iter": 3400}


@pytest.fixture(scope="module")
def evaluator_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("t2m")
    torch.save(full_checkpoint(), root / "finest.tar")
    write_glove(root / "glove")
    (root / "meta").mkdir()
    np.save(root / "meta" / "mean.npy", np.zeros(263, np.float32))
    np.save(root / "meta" / "std.npy", np.ones(263, np.float32))
    return root


def test_checkpoint_layer_names_match_release():
    sd = full_checkpoint()
    assert tuple(sd["movement_encoder"]["main.0.weight"].shape) == (512, 259, 4)
    assert tuple(sd["movement_encoder"]["main.3.weight"].shape) == (512, 512, 4)
    assert tuple(sd["movement_encoder"]["out_net.weight"].shape) == (512, 512)
    assert tuple(sd["motion_encoder"]["input_emb.weight"].shape) == (1024, 512)
    assert tuple(sd["motion_encoder"]["hidden"].shape) == (2, 1, 1024)
    assert tuple(sd["motion_encoder"]["gru.weight_hh_l0_reverse"].shape) == (3 * 1024, 1024)
    assert tuple(sd["motion_encoder"]["output_net.0.weight"].shape) == (1024, 2048)
    assert tuple(sd["motion_encoder"]["output_net.1.weight"].shape) == (1024,)  # LayerNorm
    assert tuple(sd["motion_encoder"]["output_net.3.weight"].shape) == (512, 1024)
    assert tuple(sd["text_encoder"]["pos_emb.weight"].shape) == (300, 15)
    assert tuple(sd["text_encoder"]["input_emb.weight"].shape) == (512, 300)
    assert tuple(sd["text_encoder"]["hidden"].shape) == (2, 1, 512)
    assert tuple(sd["text_encoder"]["output_net.0.weight"].shape) == (512, 1024)


def test_load_and_embed(evaluator_dir):
    ev = guo.GuoEvaluator.from_dir(evaluator_dir)
    assert ev.describe()["pack_motions"] is True
    texts = ["A person walks forward then squats.", "a/DET man/NOUN jump/VERB twice/ADV", "the man"]
    t = ev.embed_texts(texts)
    assert t.shape == (3, 512) and np.all(np.isfinite(t))
    rng = np.random.default_rng(0)
    motions = [rng.normal(size=(n, 263)).astype(np.float32) for n in (40, 61, 196, 230)]
    m = ev.embed_motions(motions)
    assert m.shape == (4, 512) and np.all(np.isfinite(m))
    # Packed embeddings do not depend on batch company or on the frames past length // 4 * 4.
    alone = ev.embed_motions([motions[1]])
    np.testing.assert_allclose(alone[0], m[1], atol=1e-4)
    np.testing.assert_allclose(ev.embed_motions([motions[1][:60]])[0], m[1], atol=1e-4)
    # Texts are embedded the same whatever the batch.
    np.testing.assert_allclose(ev.embed_texts(texts[1:2])[0], t[1], atol=1e-4)
    unpacked = guo.GuoEvaluator.from_dir(evaluator_dir, pack_motions=False)
    assert not np.allclose(unpacked.embed_motions(motions[:1]), m[:1], atol=1e-3)


def test_wrong_shape_names_the_key(tmp_path, evaluator_dir):
    ckpt = full_checkpoint()
    ckpt["motion_encoder"]["input_emb.weight"] = torch.zeros(1024, 500)
    torch.save(ckpt, tmp_path / "finest.tar")
    vec = WordVectorizer.from_dir(evaluator_dir / "glove")
    with pytest.raises(guo.GuoCheckpointError, match=r"motion_encoder\.input_emb\.weight.*\(1024, 512\).*\(1024, 500\)"):
        guo.GuoEvaluator.load(tmp_path / "finest.tar", vec, np.zeros(263), np.ones(263))


def test_missing_key_and_unsafe_checkpoint(tmp_path):
    ckpt = full_checkpoint()
    del ckpt["text_encoder"]
    torch.save(ckpt, tmp_path / "a.tar")
    with pytest.raises(guo.GuoCheckpointError, match="missing keys \\['text_encoder'\\]"):
        guo.read_checkpoint(tmp_path / "a.tar")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"text_encoder": Evil()}, tmp_path / "b.tar")
    with pytest.raises(guo.GuoCheckpointError, match="refused by the safe loader"):
        guo.read_checkpoint(tmp_path / "b.tar")
    with pytest.raises(guo.GuoCheckpointError, match="not found"):
        guo.read_checkpoint(tmp_path / "nope.tar")


def test_word_vectorizer_encoding(tmp_path):
    vecs = write_glove(tmp_path)
    vec = WordVectorizer.from_dir(tmp_path)
    words, pos, length = vec.encode(["a/DET", "person/NOUN", "walk/VERB", "zebra/NOUN"])
    assert words.shape == (22, 300) and pos.shape == (22, 15) and length == 6
    np.testing.assert_allclose(words[0], vecs[WORDS.index("sos")])
    np.testing.assert_allclose(words[3], vecs[WORDS.index("walk")])
    assert pos[3].argmax() == POS_CLASSES.index("Act_VIP")  # VIP list overrides VERB
    assert pos[1].argmax() == POS_CLASSES.index("DET")
    np.testing.assert_allclose(words[4], vecs[WORDS.index("unk")])  # unknown word
    assert pos[4].argmax() == POS_CLASSES.index("OTHER")
    assert pos[5].argmax() == POS_CLASSES.index("OTHER")  # eos
    np.testing.assert_allclose(words[10], vecs[WORDS.index("unk")])  # padding
    _, _, n = vec.encode(["a/DET"] * 30)
    assert n == 22


def test_glove_files_are_read_safely(tmp_path):
    write_glove(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "our_vab_words.pkl").write_bytes(pickle.dumps([Evil()]))
    with pytest.raises(GloveFormatError, match="refusing to unpickle builtins.print"):
        WordVectorizer.from_dir(tmp_path)
    assert safe_unpickle(pickle.dumps({"a": [1, 2]}), "x") == {"a": [1, 2]}


def test_tagger():
    assert caption_tokens("A person walks forward, then squats twice.")[:3] == ["a/DET", "person/NOUN", "walk/VERB"]
    assert caption_tokens("a/DET man/NOUN") == ["a/DET", "man/NOUN"]
    assert caption_tokens(["x/NOUN"]) == ["x/NOUN"]
