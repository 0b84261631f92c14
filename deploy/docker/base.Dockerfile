# atom-base: Python 3.11 and a venv (/opt/atom) holding the dependencies that every atom image
# shares (pyproject.toml's [project] dependencies: gRPC, the S3 client, metrics, the CLI, numpy,
# scipy). Every service image and the controller start FROM it, so these layers are stored,
# pulled and cached once per node. Build it first, tagged with the package version:
#   docker build -f deploy/docker/base.Dockerfile -t atom-base:0.1.0 .
# (deploy/docker/build.sh builds it and the six images in order; `docker compose build` does too).
#
# GPU images need nothing more from the OS: PyTorch's CUDA wheels carry their CUDA libraries, and
# the NVIDIA container toolkit mounts the driver (libcuda, nvidia-smi) into containers that ask
# for a GPU.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}
ARG ATOM_VERSION=0.1.0
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/atom/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    XDG_CACHE_HOME=/tmp/.cache \
    MPLCONFIGDIR=/tmp/.cache/matplotlib \
    MPLBACKEND=Agg
RUN useradd --uid 10001 --user-group --create-home --home-dir /home/atom --shell /usr/sbin/nologin atom \
 && python -m venv /opt/atom
# Only pyproject.toml and the helper that reads it: a change to the code never rebuilds this layer.
COPY pyproject.toml deploy/docker/requirements.py /opt/atom-build/
RUN python /opt/atom-build/requirements.py /opt/atom-build/pyproject.toml > /opt/atom-build/base.txt \
 && pip install -r /opt/atom-build/base.txt \
 && pip check
LABEL org.opencontainers.image.title="atom-base" \
      org.opencontainers.image.version="${ATOM_VERSION}" \
      org.opencontainers.image.description="Python 3.11 with the dependencies every atom image shares"
WORKDIR /home/atom
