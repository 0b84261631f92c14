# atom trainer: MotionPrefer assembly, preference pairs and LoRA + IPO/DPO/KTO training jobs on a GPU.
#
# Build from the repository root, after atom-base (deploy/docker/build.sh builds all, in order):
#   docker build -f deploy/docker/trainer.Dockerfile -t atom-trainer:0.1.0 .
#
# torch and CUDA: torch comes from PyTorch's CUDA index (TORCH_INDEX_URL, default cu130, which
# needs an NVIDIA driver >= 580 on the node; for older drivers build with an older CUDA index that
# publishes torch 2.13.0, e.g. --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128).
# Those wheels bundle their CUDA user-space libraries (cuBLAS, cuDNN, NCCL, ...), and the NVIDIA
# container toolkit mounts the driver into any container given a GPU, so the image starts from the
# same python:3.11-slim-based atom-base as the others and shares its layers; no nvidia/cuda base.
# For a CPU-only image use TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu (a few GB smaller).
ARG BASE_IMAGE=atom-base:0.1.0
FROM ${BASE_IMAGE}
ARG ATOM_VERSION=0.1.0
# (atom-base sets these too; repeated so that this file holds when built FROM another base)
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
ARG ATOM_EXTRAS=gpu-services
# torch with CUDA, from PyTorch's own index before the rest (pyproject pins torch==2.13.0, which the
# 2.13.0+cu130 build satisfies, so the extras install below keeps it).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==2.13.0"
# Dependencies first, from pyproject.toml alone: a change to the code rebuilds only the layers below.
COPY pyproject.toml deploy/docker/requirements.py /opt/atom-build/
RUN python /opt/atom-build/requirements.py --only-extras /opt/atom-build/pyproject.toml "${ATOM_EXTRAS}" \
      > /opt/atom-build/extras.txt \
 && pip install -r /opt/atom-build/extras.txt \
 && pip check
# Then the code; --no-deps since everything it needs is installed above (pip check proves it).
COPY pyproject.toml README* /src/
COPY atom /src/atom
COPY services /src/services
RUN pip install --no-deps /src \
 && pip check \
 && rm -rf /src
COPY deploy/docker/healthcheck.py /usr/local/bin/atom-healthcheck.py
# Caches go to /tmp (atom-base) so the container also runs with a read-only root filesystem.
ENV ATOM_HOST=0.0.0.0 \
    ATOM_PORT=50054 \
    ATOM_METRICS_PORT=9104 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
LABEL org.opencontainers.image.title="atom-trainer" \
      org.opencontainers.image.version="${ATOM_VERSION}" \
      org.opencontainers.image.description="atom trainer service (gRPC 50054, metrics 9104; CUDA)"
USER 10001:10001
WORKDIR /home/atom
EXPOSE 50054 9104
# A long start period: the model loads (and may move to the GPU) before the server answers.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "/usr/local/bin/atom-healthcheck.py"]
CMD ["atomctl", "serve", "trainer"]
