"""LoRA preference training on a tiny MotionLM: the reference is the base model exactly, training
raises the margin, a resumed run equals an uninterrupted one, the adapter reloads with peft."""

import threading

import pytest
import torch

from services.trainer.config import LoraSettings, TrainConfig, TrainConfigError
from services.trainer.lora import (
    LoraError,
    adapter_config,
    attach_lora,
    disable_dropout,
    eval_mode,
    load_adapter,
    reference_policy,
)
from services.trainer.pairs import PreferencePair, save_pairs
from services.trainer.train import (
    Example,
    TrainingCancelled,
    TrainingError,
    batch_indices,
    batch_loss,
    evaluate_margins,
    lr_factor,
    reference_logprobs,
    resolve_examples,
    train_preference,
)

LABELS = {"task": "temporal", "events": [{"event": "squat", "count": 1}]}
CAPTIONS = [
    "a man walks forward then squats",
    "a person jumps two times",
    "a man waves and walks backward",
    "a person squats three times",
    "a man jumps forward then waves",
]


def make_pairs(n=4):
    return [
        PreferencePair(
            "temporal",
            f"p{i}",
            CAPTIONS[i],
            LABELS,
            f"motions/{i}w.npz",
            f"motions/{i}l.npz",
            5,
            1,
            tuple((7 * i + k) % 512 for k in range(6)),
            tuple((100 + 13 * i + 3 * k) % 512 for k in range(5)),
        )
        for i in range(n)
    ]


def config(**kw):
    # The paper's recipe as the official release ran it (IPO, beta 0.1, TRL's per-token mean for
    # IPO): the maths below is written for it; the defaults are the embedded run's (KTO).
    base = dict(
        pairs_key="datasets/t/pairs.jsonl", output_prefix="models/t", batch_size=2, epochs=2, loss="ipo", beta=0.1, average_logprobs=None
    )
    return TrainConfig(**{**base, **kw})


def logprobs(lm, examples):
    ids, mask = lm.encode_text([e.prompt for e in examples])
    return lm.sequence_logprobs(ids, mask, lm.encode_motion([list(e.chosen) for e in examples]))


def randomise_lora_b(peft_model, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)


def test_disable_dropout_makes_the_forward_deterministic(tiny_lm):
    lm = tiny_lm(dropout=0.3)
    lm.model.train()
    ex = resolve_examples(None, make_pairs(2), lm.format_prompt)
    assert not torch.equal(logprobs(lm, ex), logprobs(lm, ex))  # dropout on: two forwards differ
    disable_dropout(lm.model)
    assert torch.equal(logprobs(lm, ex), logprobs(lm, ex))


def test_adapter_disabled_forward_equals_the_base_model_exactly(tiny_lm):
    lm = tiny_lm()
    disable_dropout(lm.model)
    lm.model.train()
    ex = resolve_examples(None, make_pairs(3), lm.format_prompt)
    with torch.no_grad():
        base = logprobs(lm, ex)
    peft_model = attach_lora(lm.model, LoraSettings())
    peft_model.train()
    with torch.no_grad():
        assert torch.equal(logprobs(lm, ex), base)  # B = 0 at init: the adapter adds exactly nothing
        randomise_lora_b(peft_model)
        assert not torch.allclose(logprobs(lm, ex), base, atol=1e-3)  # the adapter is live
        with reference_policy(peft_model):
            assert torch.equal(logprobs(lm, ex), base)  # ... and disabling it gives the base back


def test_h_is_exactly_zero_at_init_and_the_batch_margin_matches_a_manual_computation(tiny_lm):
    lm = tiny_lm()
    disable_dropout(lm.model)
    peft_model = attach_lora(lm.model, LoraSettings())
    peft_model.train()  # LoRA dropout active: it must not matter while B = 0
    ex = resolve_examples(None, make_pairs(3), lm.format_prompt)
    cfg = config()
    out = batch_loss(lm, peft_model, ex, cfg, torch.device("cpu"))
    assert out.metrics["margin"] == 0.0 and out.loss.item() == 25.0  # (0 - 1/(2*0.1))^2

    randomise_lora_b(peft_model)
    with eval_mode(peft_model):
        out = batch_loss(lm, peft_model, ex, cfg, torch.device("cpu"))

        def avg(examples, side):
            tokens = [list(getattr(e, side)) for e in examples]
            ids, mask = lm.encode_text([e.prompt for e in examples])
            lp = lm.sequence_logprobs(ids, mask, lm.encode_motion(tokens))
            return lp / torch.tensor([len(t) + 3 for t in tokens])  # <start> codes <end> </s>

        with torch.no_grad():
            pw, pl = avg(ex, "chosen"), avg(ex, "rejected")
            with reference_policy(peft_model):
                rw, rl = avg(ex, "chosen"), avg(ex, "rejected")
    h = (pw - rw) - (pl - rl)
    assert out.metrics["margin"] == pytest.approx(h.mean().item(), abs=1e-5)
    assert out.loss.item() == pytest.approx(((h - 5.0) ** 2).mean().item(), rel=1e-5)


@pytest.mark.parametrize("loss", ["ipo", "kto"])
def test_reference_log_probs_computed_once_give_the_loss_of_per_batch_ones(tiny_lm, loss):
    # Training computes the reference once per example (it is frozen and dropout is off); a batch
    # then takes its rows, and its loss is the one the reference computed in the batch gives.
    lm = tiny_lm()
    disable_dropout(lm.model)
    peft_model = attach_lora(lm.model, LoraSettings())
    randomise_lora_b(peft_model)
    ex = resolve_examples(None, make_pairs(5), lm.format_prompt)
    cfg = config(loss=loss, batch_size=2, average_logprobs=False)
    cpu = torch.device("cpu")
    with eval_mode(peft_model), torch.no_grad():  # LoRA dropout off: the two losses see the same policy
        chosen, rejected = reference_logprobs(lm, peft_model, ex, cfg, cpu)
        assert chosen.shape == rejected.shape == (5,)
        with reference_policy(peft_model):
            assert torch.allclose(chosen, logprobs(lm, ex), atol=1e-5)
        idx = [4, 1, 2]
        batch = [ex[i] for i in idx]
        cached = batch_loss(lm, peft_model, batch, cfg, cpu, torch.cat([chosen[idx], rejected[idx]]))
        fresh = batch_loss(lm, peft_model, batch, cfg, cpu)
    assert cached.loss.item() == pytest.approx(fresh.loss.item(), rel=1e-5, abs=1e-6)
    assert cached.metrics["margin"] == pytest.approx(fresh.metrics["margin"], rel=1e-5, abs=1e-6)


def test_rpo_alpha_adds_the_chosen_per_token_nll_to_the_loss(tiny_lm):
    lm = tiny_lm()
    disable_dropout(lm.model)
    peft_model = attach_lora(lm.model, LoraSettings())
    randomise_lora_b(peft_model)
    ex = resolve_examples(None, make_pairs(3), lm.format_prompt)
    with eval_mode(peft_model), torch.no_grad():
        plain = batch_loss(lm, peft_model, ex, config(), torch.device("cpu"))
        rpo = batch_loss(lm, peft_model, ex, config(rpo_alpha=0.5), torch.device("cpu"))
        lengths = torch.tensor([len(e.chosen) + 3 for e in ex])  # <start> codes <end> </s>
        nll = -(logprobs(lm, ex) / lengths).mean().item()
    assert "chosen_nll" not in plain.metrics and rpo.metrics["chosen_nll"] == pytest.approx(nll, rel=1e-5)
    assert rpo.metrics["margin"] == plain.metrics["margin"]
    assert rpo.loss.item() == pytest.approx(plain.loss.item() + 0.5 * nll, rel=1e-5)
    assert rpo.metrics["loss"] == pytest.approx(rpo.loss.item(), rel=1e-6)


def test_training_raises_the_margin_and_the_adapter_reloads_with_peft(tiny_lm, store):
    pairs = make_pairs(4)
    save_pairs(store, "datasets/t/pairs.jsonl", pairs)
    cfg = config(batch_size=4, epochs=25)
    events = []
    lm = tiny_lm()
    result = train_preference(lm, store, cfg, on_progress=events.append)
    assert [e.step for e in events] == list(range(1, 26)) and events[-1].total_steps == 25
    assert events[0].margin == 0.0 and events[0].lr == pytest.approx(1e-3)
    assert events[-1].lr < 1e-5  # cosine decays to ~0
    assert result.steps == 25 and result.resumed_from_step == 0

    # The generator's path: a fresh base model + the stored adapter, loaded by peft.
    lm2 = tiny_lm()
    peft2 = load_adapter(store, result.adapter_prefix, lm2.model)
    ex = resolve_examples(store, pairs, lm2.format_prompt)
    after = evaluate_margins(lm2, peft2, ex, cfg)
    assert after["margin"] > 0.3 and after["accuracy"] == 1.0
    with torch.no_grad():
        lm.model.eval()
        assert torch.allclose(logprobs(lm, ex), logprobs(lm2, ex), atol=1e-5)  # same function as trained
    conf = adapter_config(store, result.adapter_prefix)
    assert (conf["r"], conf["lora_alpha"], conf["lora_dropout"]) == (8, 16, 0.05)
    assert sorted(conf["target_modules"]) == ["q", "v"] and conf["peft_type"] == "LORA"
    assert store.get_json(result.summary_key)["steps"] == 25


def _final_adapter(store, prefix):
    from safetensors.torch import load

    return load(store.get_bytes(f"{prefix}/adapter/adapter_model.safetensors"))


def test_a_resumed_run_ends_exactly_where_an_uninterrupted_one_does(tiny_lm, tmp_path):
    from atom.store import LocalStore

    pairs = make_pairs(5)  # batch 2 -> 3 steps per epoch (the last one short); 2 epochs = 6 steps
    cfg = config(batch_size=2, epochs=3)
    ref_store = LocalStore(tmp_path / "a")
    full = train_preference(tiny_lm(), ref_store, cfg, pairs=pairs)
    assert full.steps == 9

    st = LocalStore(tmp_path / "b")
    cancel = threading.Event()

    def stop_after(step):
        def cb(p):
            if p.step == step:
                cancel.set()

        return cb

    # 1: cancelled mid-epoch after step 4 -> checkpoint at step 4
    with pytest.raises(TrainingCancelled) as info:
        train_preference(tiny_lm(), st, cfg, pairs=pairs, on_progress=stop_after(4), cancel=cancel)
    assert info.value.step == 4

    # 2: a crash after step 8 -> the last checkpoint is the end of epoch 2 (step 6)
    def crash(p):
        if p.step == 8:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        train_preference(tiny_lm(), st, cfg, pairs=pairs, on_progress=crash)
    # 3: resume to the end
    resumed = train_preference(tiny_lm(), st, cfg, pairs=pairs)
    assert resumed.resumed_from_step == 6
    a, b = _final_adapter(ref_store, "models/t"), _final_adapter(st, "models/t")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]


def test_a_checkpoint_of_another_config_or_changed_pairs_is_refused(tiny_lm, store):
    pairs = make_pairs(2)
    train_preference(tiny_lm(), store, config(batch_size=2, epochs=1), pairs=pairs)
    with pytest.raises(TrainingError, match="different training config"):
        train_preference(tiny_lm(), store, config(batch_size=2, epochs=1, lr=5e-4), pairs=pairs)
    with pytest.raises(TrainingError, match="changed since the checkpoint"):
        train_preference(tiny_lm(), store, config(batch_size=2, epochs=1), pairs=make_pairs(3))


@pytest.mark.parametrize("loss, first_loss", [("dpo", 0.6931471805599453), ("kto", 0.5)])
def test_dpo_and_kto_start_at_their_closed_form_value_and_learn(tiny_lm, store, loss, first_loss):
    events = []
    train_preference(tiny_lm(), store, config(loss=loss, beta=1.0, batch_size=4, epochs=15), pairs=make_pairs(4), on_progress=events.append)
    # policy == reference at step 1: DPO -log sigmoid(0) = log 2; KTO 1 - sigmoid(0) = 0.5
    assert events[0].loss == pytest.approx(first_loss, abs=1e-6)
    assert events[-1].loss < events[0].loss and events[-1].margin > 0
    if loss == "kto":
        assert "kl" in events[-1].metrics


def test_missing_lora_targets_are_a_clear_error(tiny_lm):
    with pytest.raises(LoraError, match="do not exist"):
        attach_lora(tiny_lm().model, LoraSettings(target_modules=("q_proj",)))


def test_learning_rate_schedule():
    assert lr_factor(0, 100) == 1.0
    assert lr_factor(50, 100) == pytest.approx(0.5)
    assert lr_factor(100, 100) == pytest.approx(0.0)
    assert lr_factor(0, 100, warmup_steps=10) == 0.0 and lr_factor(5, 100, warmup_steps=10) == 0.5
    assert lr_factor(10, 100, warmup_steps=10) == 1.0
    assert lr_factor(55, 100, warmup_steps=10) == pytest.approx(0.5)
    assert lr_factor(70, 100, schedule="constant") == 1.0
    assert config(warmup_ratio=0.1).warmup_for(95) == 10 and config(warmup_steps=3).warmup_for(95) == 3
    with pytest.raises(TrainConfigError, match="not both"):
        config(warmup_ratio=0.1, warmup_steps=3)


def test_epoch_order_covers_every_example_once_and_depends_only_on_seed_and_epoch():
    seen = [i for step in range(3) for i in batch_indices(step, 5, 2, seed=3)[1]]
    assert sorted(seen) == [0, 1, 2, 3, 4]
    assert batch_indices(4, 5, 2, seed=3) == batch_indices(4, 5, 2, seed=3)
    assert batch_indices(3, 5, 2, seed=3)[0] == 1


def test_config_validation_roundtrip_and_fingerprint():
    cfg = config()
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.fingerprint() == config().fingerprint() != config(seed=1).fingerprint()
    assert cfg.uses_average_logprobs and not config(loss="dpo").uses_average_logprobs
    (d := cfg.to_dict())["lora"]["r"] = 4
    assert TrainConfig.from_dict(d).lora.r == 4
    for bad, pattern in [
        ({"loss": "ppo"}, "loss must be"),
        ({"lr": 0}, "lr must be"),
        ({"batch_size": 0}, "batch_size"),
        ({"prompt_template": "no slot"}, "prompt_template"),
        ({"label_smoothing": 0.1}, "dpo' only"),
        ({"max_steps": 0}, "max_steps"),
        ({"rpo_alpha": -1}, "rpo_alpha"),
    ]:
        with pytest.raises(TrainConfigError, match=pattern):
            config(**bad)
    with pytest.raises(TrainConfigError, match="unknown training config fields"):
        TrainConfig.from_dict({**cfg.to_dict(), "epoch": 3})
    with pytest.raises(TrainConfigError, match="lora.r"):
        LoraSettings(r=0)


def test_examples_need_tokens(store):
    from services.trainer.motionprefer import MotionPreferFormatError

    pair = PreferencePair("temporal", "p", "x", LABELS, "motions/a.npz", "motions/b.npz", 5, 0)
    with pytest.raises(Exception) as info:
        resolve_examples(store, [pair], str)
    assert "motions/a.npz" in str(info.value)
    assert resolve_examples(store, make_pairs(1), str)[0] == Example(
        CAPTIONS[0], make_pairs(1)[0].chosen_tokens, make_pairs(1)[0].rejected_tokens
    )
    assert MotionPreferFormatError
