import io
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # so tests can import fake_openai

from atom.motion.events import EventLabel, LabelGroup  # noqa: E402
from atom.store import LocalStore  # noqa: E402
from services.judge.records import JudgeItem, PromptRecord  # noqa: E402


def png(seed: int, size: int = 8) -> bytes:
    from PIL import Image

    img = Image.new("RGB", (size, size), ((seed * 37) % 256, (seed * 91) % 256, (seed * 13) % 256))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def make_item(i: int, task: str = "temporal", n_frames: int = 3, form: str = "frame-by-frame") -> JudgeItem:
    if task == "temporal":
        labels = LabelGroup("temporal", (EventLabel("walk_forward"), EventLabel("squat"), EventLabel("wave")))
        text = f"A man walks forward, then squats, and then waves (take {i})."
    elif task == "integrity":
        labels = LabelGroup("integrity", (EventLabel("walk_forward"), EventLabel("squat")))
        text = f"A man walks forward and squats (take {i})."
    else:
        labels = LabelGroup("frequency", (EventLabel("jump_in_place", 2),))
        text = f"A person jumps in place twice (take {i})."
    images = [png(100 * i + k) for k in range(n_frames if form == "frame-by-frame" else 1)]
    return JudgeItem(f"item-{i}", PromptRecord.make(text, labels), images, form)


@pytest.fixture
def store(tmp_path):
    return LocalStore(tmp_path / "store")
