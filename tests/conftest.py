import os

# Headless rendering on every machine that runs the tests (Mesa llvmpipe here, the GPU elsewhere).
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
