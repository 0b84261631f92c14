import threading

import pytest

from services.judge.budget import BudgetExceeded, BudgetLedger, CostModel, TokenBucket
from services.judge.cache import JudgementCache, cache_key


class FakeClock:
    def __init__(self):
        self.t = 0.0
        self.sleeps = []

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.sleeps.append(s)
        self.t += s


def test_cost_model():
    cm = CostModel(usd_per_1k_input=2.0, usd_per_1k_output=8.0, image_tokens=85, max_completion_tokens=100)
    assert cm.cost(1000, 500) == pytest.approx(2.0 + 4.0)
    p, c, usd = cm.estimate(text_bytes=400, n_images=3, n_messages=2)
    assert p == 400 + 3 * 85 + 3 * 8 and c == 100
    assert usd == pytest.approx(cm.cost(p, c))
    with pytest.raises(ValueError):
        CostModel(usd_per_1k_input=-1)


def test_ledger_refuses_before_overspending():
    led = BudgetLedger(1.0)
    r1 = led.reserve(0.4)
    r2 = led.reserve(0.4)
    with pytest.raises(BudgetExceeded, match="budget cap"):
        led.reserve(0.4)  # 0.8 held + 0.4 > 1.0
    led.settle(r1, 0.1)  # the real cost was lower: room frees up
    r3 = led.reserve(0.4)
    led.release(r2)
    led.settle(r3, 0.4)
    assert led.spent_usd == pytest.approx(0.5) and led.reserved_usd == pytest.approx(0.0)
    assert led.refused == 1
    led.settle(r3, 5.0)  # settling twice is a no-op
    assert led.spent_usd == pytest.approx(0.5)


def test_budget_exceeded_is_resource_exhausted():
    import grpc

    from atom.runtime.errors import ResourceExhausted, status_for

    assert issubclass(BudgetExceeded, ResourceExhausted)
    with pytest.raises(ResourceExhausted) as err:
        BudgetLedger(0.0).reserve(0.01)
    assert status_for(err.value) == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_ledger_scales_estimates_after_an_underestimate():
    led = BudgetLedger(10.0)
    r = led.reserve(1.0)
    led.settle(r, 2.0)  # the estimate was too low
    assert led.estimate_factor == pytest.approx(2.0)
    r = led.reserve(1.0)
    assert r.amount == pytest.approx(2.0)


def test_ledger_concurrent_reservations_never_pass_the_cap():
    led = BudgetLedger(1.0)
    got = []

    def worker():
        for _ in range(50):
            try:
                r = led.reserve(0.03)
            except BudgetExceeded:
                return
            led.settle(r, 0.03)
            got.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert led.spent_usd <= 1.0 + 1e-9 and len(got) == 33


def test_unlimited_ledger_and_bad_cap():
    led = BudgetLedger(None)
    led.settle(led.reserve(1e9), 1e9)
    with pytest.raises(ValueError):
        BudgetLedger(-1)


def test_token_bucket_paces_requests():
    clock = FakeClock()
    b = TokenBucket(60, clock=clock, sleep=clock.sleep)  # one per second
    for _ in range(60):
        assert b.acquire() == 0.0  # a full bucket allows a burst
    waited = b.acquire()
    assert waited == pytest.approx(1.0)
    clock.t += 10
    assert b.acquire(5) == 0.0
    assert b.acquire(6) == pytest.approx(1.0)  # 5 left after refill of 10, need one more second


def test_token_bucket_oversized_request_and_give_back():
    clock = FakeClock()
    b = TokenBucket(100, clock=clock, sleep=clock.sleep)
    assert b.acquire(500) == 0.0  # clamped to the capacity
    b.give_back(30)
    assert b.acquire(30) == 0.0
    assert TokenBucket(None).acquire(1e9) == 0.0


def test_cache_key_is_stable_and_sensitive(store):
    k = cache_key("m", "v1", "temporal", "text", ["a", "b"], "frame-by-frame", 8)
    assert k == cache_key("m", "v1", "temporal", "text", ["a", "b"], "frame-by-frame", 8)
    others = [
        cache_key("m2", "v1", "temporal", "text", ["a", "b"], "frame-by-frame", 8),
        cache_key("m", "v2", "temporal", "text", ["a", "b"], "frame-by-frame", 8),
        cache_key("m", "v1", "integrity", "text", ["a", "b"], "frame-by-frame", 8),
        cache_key("m", "v1", "temporal", "text!", ["a", "b"], "frame-by-frame", 8),
        cache_key("m", "v1", "temporal", "text", ["b", "a"], "frame-by-frame", 8),
        cache_key("m", "v1", "temporal", "text", ["a", "b"], "full-image", 8),
        cache_key("m", "v1", "temporal", "text", ["a", "b"], "frame-by-frame", 4),
    ]
    assert len({k, *others}) == 8
    cache = JudgementCache(store)
    assert cache.get(k) is None
    cache.put(k, {"score": None, "error": "bad reply"})
    assert cache.get(k) is None  # unanswered records are misses
    cache.put(k, {"score": 4})
    assert cache.get(k)["score"] == 4
    store.put_bytes(cache.record_key(k), b"{not json")
    assert cache.get(k) is None  # a corrupt record is re-asked
