import numpy as np
import pytest

from services.evaluator.records import MIN_EVAL_FRAMES, SampleError, hold_to_min_length


def test_short_motion_is_held_on_its_last_pose():
    feats = np.arange(5 * 263, dtype=np.float32).reshape(5, 263)
    out, padded = hold_to_min_length(feats)
    assert padded and out.shape == (MIN_EVAL_FRAMES, 263)
    np.testing.assert_array_equal(out[:5], feats)
    np.testing.assert_array_equal(out[5:], np.repeat(feats[-1:], MIN_EVAL_FRAMES - 5, axis=0))


def test_long_enough_motion_is_returned_unchanged():
    feats = np.ones((MIN_EVAL_FRAMES, 263), np.float32)
    out, padded = hold_to_min_length(feats)
    assert not padded and out is feats


def test_empty_motion_is_an_error():
    with pytest.raises(SampleError, match="empty motion"):
        hold_to_min_length(np.zeros((0, 263), np.float32))
