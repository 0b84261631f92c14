# atom trainer: MotionPrefer assembly, preference pairs and LoRA + IPO/DPO/KTO training jobs on a GPU.
#
# Build from the repository root (the build context must hold pyproject.toml, atom/, services/):
#   docker build -f deploy/docker/trainer.Dockerfile -t atom-trainer .
#
# torch and CUDA, the trade-off: pyproject pins torch==2.13.0, and plain `pip install .` gives the
# CPU build used everywhere else. Here torch comes first from PyTorch's CUDA index
# (TORCH_INDEX_URL, default cu130); its 2.13.0+cu130 build satisfies the pin, so the project
# install keeps it. Those wheels bundle their own CUDA user-space libraries (cuBLAS, cuDNN, NCCL,
# ... several GB), so the base image only needs the small CUDA "base" flavour (cudart and the
# NVIDIA container-toolkit settings), not "runtime" or "cudnn", which would ship the same
# libraries twice. cu130 needs an NVIDIA driver >= 580 on the node; for older drivers build with
# an older CUDA index that publishes torch 2.13.0 (e.g. --build-arg
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 --build-arg
# CUDA_IMAGE=nvidia/cuda:12.8.1-base-ubuntu24.04). For a CPU-only image of this service use
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu: a few GB smaller, no GPU needed.
# Python 3.11 is not packaged on Ubuntu 24.04, so uv installs a standalone CPython build.
ARG CUDA_IMAGE=nvidia/cuda:13.0.0-base-ubuntu24.04
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.8.14

FROM ${UV_IMAGE} AS uv

# ---- build: Python 3.11 + a venv with the project ----
FROM ${CUDA_IMAGE} AS build
ARG PYTHON_VERSION=3.11
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_PYTHON_PREFERENCE=only-managed \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN uv python install "${PYTHON_VERSION}" \
 && uv venv --seed --python "${PYTHON_VERSION}" /opt/atom
ENV PATH=/opt/atom/bin:$PATH
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==2.13.0"
WORKDIR /src
COPY pyproject.toml README* ./
COPY atom ./atom
COPY services ./services
RUN pip install . && pip check

# ---- runtime: the venv and its interpreter, at the same paths (the venv links to them) ----
FROM ${CUDA_IMAGE}
RUN useradd --uid 10001 --user-group --create-home --home-dir /home/atom --shell /usr/sbin/nologin atom
COPY --from=build /opt/python /opt/python
COPY --from=build /opt/atom /opt/atom
COPY deploy/docker/healthcheck.py /usr/local/bin/atom-healthcheck.py
# Caches go to /tmp so the container also runs with a read-only root filesystem (Kubernetes).
ENV PATH=/opt/atom/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    XDG_CACHE_HOME=/tmp/.cache \
    MPLCONFIGDIR=/tmp/.cache/matplotlib \
    MPLBACKEND=Agg \
    ATOM_HOST=0.0.0.0 \
    ATOM_PORT=50054 \
    ATOM_METRICS_PORT=9104
LABEL org.opencontainers.image.title="atom-trainer" \
      org.opencontainers.image.description="atom trainer service (gRPC 50054, metrics 9104; CUDA)"
USER 10001:10001
WORKDIR /home/atom
EXPOSE 50054 9104
# A long start period: the model loads (and may move to the GPU) before the server answers.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "/usr/local/bin/atom-healthcheck.py"]
CMD ["atomctl", "serve", "trainer"]
