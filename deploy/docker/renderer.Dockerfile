# atom renderer: headless rendering with pyrender on Mesa EGL (llvmpipe: software OpenGL, no GPU or display).
#
# Build from the repository root (the build context must hold pyproject.toml, atom/, services/):
#   docker build -f deploy/docker/renderer.Dockerfile -t atom-renderer .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: a venv with the project, so the runtime stage carries no pip or build caches ----
FROM ${PYTHON_IMAGE} AS build
# The CPU build of torch (about 200 MB instead of several GB of CUDA libraries): this service never
# touches a GPU. Installed first from PyTorch's index; pyproject pins torch==2.13.0, which the
# 2.13.0+cpu build satisfies, so the project install below keeps it.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/atom
ENV PATH=/opt/atom/bin:$PATH
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==2.13.0"
WORKDIR /src
COPY pyproject.toml README* ./
COPY atom ./atom
COPY services ./services
RUN pip install . && pip check

# ---- runtime ----
FROM ${PYTHON_IMAGE}
# Headless OpenGL through EGL on Mesa (llvmpipe, software): libegl1 (GLVND loader), libegl-mesa0
# (Mesa's EGL vendor library), libgl1-mesa-dri (llvmpipe). PyOpenGL's EGL platform also loads
# desktop libGL.so.1 (libgl1), and pyrender's import pulls in pyglet, which loads libX11 at import
# time even when no display is used (libx11-6). Without these pyrender cannot start.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libx11-6 \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --uid 10001 --user-group --create-home --home-dir /home/atom --shell /usr/sbin/nologin atom
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
    ATOM_PORT=50052 \
    ATOM_METRICS_PORT=9102 \
    PYOPENGL_PLATFORM=egl
LABEL org.opencontainers.image.title="atom-renderer" \
      org.opencontainers.image.description="atom renderer service (gRPC 50052, metrics 9102)"
USER 10001:10001
WORKDIR /home/atom
EXPOSE 50052 9102
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/usr/local/bin/atom-healthcheck.py"]
CMD ["atomctl", "serve", "renderer"]
