# atom renderer: headless rendering with pyrender on Mesa EGL (llvmpipe: software OpenGL, no GPU, no torch).
#
# Build from the repository root, after atom-base (deploy/docker/build.sh builds all, in order):
#   docker build -f deploy/docker/renderer.Dockerfile -t atom-renderer:0.1.0 .
#
# The mesh style (SMPL bodies, style=mesh with ATOM_SMPL_MODEL) poses the body with smplx, which
# needs torch: build with --build-arg ATOM_EXTRAS=smpl to add it (the CPU build, several hundred
# MB; the skeleton forms need none of it).
ARG BASE_IMAGE=atom-base:0.1.0
FROM ${BASE_IMAGE}
ARG ATOM_VERSION=0.1.0
# (atom-base sets these too; repeated so that this file holds when built FROM another base)
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
ARG ATOM_EXTRAS=renderer
# Headless OpenGL through EGL on Mesa (llvmpipe, software): libegl1 (GLVND loader), libegl-mesa0
# (Mesa's EGL vendor library), libgl1-mesa-dri (llvmpipe). PyOpenGL's EGL platform also loads
# desktop libGL.so.1 (libgl1), and pyrender's import pulls in pyglet, which loads libX11 at import
# time even when no display is used (libx11-6). Without these pyrender cannot start.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libx11-6 \
 && rm -rf /var/lib/apt/lists/*
# Dependencies first, from pyproject.toml alone: a change to the code rebuilds only the layers below.
# Only ATOM_EXTRAS=smpl brings torch; it then comes from PyTorch's CPU index (PyPI's is CUDA's).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
COPY pyproject.toml deploy/docker/requirements.py /opt/atom-build/
RUN python /opt/atom-build/requirements.py --only-extras /opt/atom-build/pyproject.toml "${ATOM_EXTRAS}" \
      > /opt/atom-build/extras.txt \
 && if grep -q '^torch==' /opt/atom-build/extras.txt; then \
      pip install --index-url "${TORCH_INDEX_URL}" "$(grep '^torch==' /opt/atom-build/extras.txt)"; fi \
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
    ATOM_PORT=50052 \
    ATOM_METRICS_PORT=9102 \
    PYOPENGL_PLATFORM=egl
LABEL org.opencontainers.image.title="atom-renderer" \
      org.opencontainers.image.version="${ATOM_VERSION}" \
      org.opencontainers.image.description="atom renderer service (gRPC 50052, metrics 9102)"
USER 10001:10001
WORKDIR /home/atom
EXPOSE 50052 9102
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/usr/local/bin/atom-healthcheck.py"]
CMD ["atomctl", "serve", "renderer"]
