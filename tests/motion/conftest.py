"""The motion tests share `rest_skeleton` (put on sys.path: the tests import it by name)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
