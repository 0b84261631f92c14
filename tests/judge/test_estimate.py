"""Estimating a run before spending, checked against what a server counting by the documented
rule reports."""

import io
import json

import pytest
from PIL import Image

from conftest import make_item
from fake_openai import FakeOpenAI, gpt4o_image_tokens, score_reply
from services.judge.budget import CostModel
from services.judge.estimate import GPT4O_IMAGES, ImageTokenRule, estimate, png_size, question_input_tokens
from services.judge.records import JudgeItem
from services.judge.vlm import VLMConfig, VLMJudge

ENV = {"ATOM_JUDGE_API_KEY": "sk-test-estimate-000000"}


def png_wh(w: int, h: int, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (seed % 256, 40, 90)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "size,detail,tokens",
    [
        ((1024, 1024), "high", 765),  # the guide's first worked example
        ((2048, 4096), "high", 1105),  # the second: 1024x2048, then 768x1536, 6 tiles
        ((4096, 8192), "low", 85),  # low detail: fixed
        ((256, 256), "auto", 765),  # read literally, a small image is scaled up to 768x768
        ((1280, 512), "auto", 1445),  # a 5-wide full-image strip: 1920x768, 4x2 tiles
        ((512, 300), "high", 85 + 170 * 3 * 2),  # 1310x768
    ],
)
def test_image_rule_matches_the_documented_examples(size, detail, tokens):
    assert GPT4O_IMAGES.tokens(*size, detail) == tokens
    assert gpt4o_image_tokens(*size, detail) == tokens  # the fake server's own implementation agrees


def test_png_size_and_rule_text():
    assert png_size(png_wh(321, 123)) == (321, 123)
    with pytest.raises(ValueError, match="not a PNG"):
        png_size(b"\xff\xd8\xff" + b"0" * 30)
    text = GPT4O_IMAGES.describe()
    assert "768" in text and "2048" in text and "170" in text and "platform.openai.com" in text
    cheap = ImageTokenRule(tile_tokens=100)
    assert cheap.tokens(1024, 1024) == 85 + 400


def items_of_many_sizes():
    a = make_item(0)
    out = [
        JudgeItem("frames", a.prompt, [png_wh(300, 200, k) for k in range(3)], "frame-by-frame"),
        JudgeItem("strip", make_item(1).prompt, [png_wh(1280, 512, 7)], "full-image"),
        JudgeItem("big", make_item(2, "frequency").prompt, [png_wh(3000, 1000, 9)], "trajectory-image"),
        JudgeItem("tiny", make_item(3, "integrity").prompt, [png_wh(64, 64, k) for k in range(5)], "frame-by-frame"),
    ]
    return out


@pytest.mark.parametrize("text_tokens", ["bytes", "words"])
def test_estimate_equals_what_the_server_counts_within_the_text_bound(store, text_tokens):
    items = items_of_many_sizes()
    cost = CostModel(usd_per_1k_input=0.0025, usd_per_1k_output=0.01)
    with FakeOpenAI([score_reply(5, completion_tokens=20)], count_tokens=True, text_tokens=text_tokens) as srv:
        cfg = VLMConfig(model="fake-vlm", base_url=srv.base_url, cost=cost)
        with VLMJudge(cfg, store, env=ENV) as judge:
            list(judge.score_batch(items[:1]))  # one item answered before: cached, never counted again
            srv.counted.clear()
            est = estimate(items, cfg, judge.cache)
            assert (est.questions, est.cached, est.to_ask) == (4, 1, 3)
            got = list(judge.score_batch(items))
        assert len(srv.counted) == 3
        server_images = sum(c["image_tokens"] for c in srv.counted)
        server_prompt = sum(c["prompt_tokens"] for c in srv.counted)
        server_text = sum(c["text_tokens"] + c["overhead"] for c in srv.counted)
    # Images: exact, by the same documented rule from the images' real sizes.
    assert est.image_tokens == server_images
    # Text: the estimate is an upper bound (bytes), so the whole input is bounded by it.
    assert server_text <= est.text_tokens
    assert 0 <= est.input_tokens - server_prompt <= est.text_tokens
    assert sum(g.prompt_tokens for g in got if not g.cache_hit) == server_prompt  # what was billed
    # Output: the cached answer's completion tokens; cost at that figure, the Batch API at half.
    assert est.output_tokens_expected == 20 and "cached" in est.output_basis
    assert est.sync_usd == pytest.approx(cost.cost(est.input_tokens, 20 * 3))
    assert est.batch_usd == pytest.approx(est.sync_usd / 2)
    assert est.sync_usd_bound == pytest.approx(cost.cost(est.input_tokens, cost.max_completion_tokens * 3))
    assert est.image_sizes == {"1280x512": 1, "3000x1000": 1, "64x64": 5}
    assert est.images_per_question == (1, 5, pytest.approx(7 / 3))
    per = {q.item_id: q for q in est.per_question}
    assert per["big"].image_tokens == gpt4o_image_tokens(3000, 1000)
    assert question_input_tokens(items[1], cfg) == (per["strip"].image_tokens, per["strip"].text_tokens)


def test_estimate_text_states_the_rule_and_serialises(store):
    items = items_of_many_sizes()
    cfg = VLMConfig(model="fake-vlm", image_detail="low")
    est = estimate(items, cfg, None, batch_price_factor=0.4, expected_output_tokens=50)
    assert est.image_tokens == 85 * 10  # low detail: 85 per image, whatever its size
    assert est.output_tokens_expected == 50 and est.batch_usd == pytest.approx(est.sync_usd * 0.4)
    text = est.format()
    for needle in (
        "4 to ask",
        "image rule",
        "text rule",
        "upper bound",
        "Batch API",
        "0.4 x synchronous",
        "platform.openai.com/docs/guides/vision",
    ):
        assert needle in text, needle
    d = est.to_dict()
    assert json.loads(json.dumps(d))["input_tokens"] == est.input_tokens


def test_estimate_counts_votes_and_refuses_bad_images(store):
    good, bad = make_item(0), JudgeItem("jpeg", make_item(1).prompt, [b"\xff\xd8\xff" + b"0" * 30])
    est = estimate([good, bad, good], VLMConfig(model="m", votes=3), None)
    assert est.invalid == 1 and est.questions == 3 and est.to_ask == 3  # the duplicate item is asked once
    assert sorted(q.vote for q in est.per_question) == [0, 1, 2]
    assert est.output_basis.startswith("no cached answers")


def test_estimates_of_chunks_merge_into_the_estimate_of_the_whole(store):
    """What the judge service's Estimate does for a run sent in chunks (EstimateRequest.so_far)."""
    from services.judge.estimate import merge

    items = items_of_many_sizes()
    cost = CostModel(usd_per_1k_input=0.0025, usd_per_1k_output=0.01)
    with FakeOpenAI([score_reply(5, completion_tokens=20)]) as srv:
        cfg = VLMConfig(model="fake-vlm", base_url=srv.base_url, cost=cost)
        with VLMJudge(cfg, store, env=ENV) as judge:
            list(judge.score_batch(items[1:2]))  # one cached answer, in the first chunk
            whole = estimate(items, cfg, judge.cache)
            parts = merge(estimate(items[:2], cfg, judge.cache), estimate(items[2:], cfg, judge.cache), cost)
    assert whole.cached == 1 and whole.output_tokens_expected == 20
    assert parts.to_dict() == whole.to_dict()
    assert parts.format() == whole.format()
    with pytest.raises(ValueError, match="different configs"):
        merge(whole, estimate(items, VLMConfig(model="other", cost=cost)), cost)
