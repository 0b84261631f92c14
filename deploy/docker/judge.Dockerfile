# atom judge: judge prompts, the offline kinematic judge and the OpenAI-compatible VLM judge (CPU, no torch).
#
# Build from the repository root, after atom-base (deploy/docker/build.sh builds all, in order):
#   docker build -f deploy/docker/judge.Dockerfile -t atom-judge:0.1.0 .
ARG BASE_IMAGE=atom-base:0.1.0
FROM ${BASE_IMAGE}
ARG ATOM_VERSION=0.1.0
# (atom-base sets these too; repeated so that this file holds when built FROM another base)
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
ARG ATOM_EXTRAS=judge
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
    ATOM_PORT=50053 \
    ATOM_METRICS_PORT=9103
LABEL org.opencontainers.image.title="atom-judge" \
      org.opencontainers.image.version="${ATOM_VERSION}" \
      org.opencontainers.image.description="atom judge service (gRPC 50053, metrics 9103)"
USER 10001:10001
WORKDIR /home/atom
EXPOSE 50053 9103
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/usr/local/bin/atom-healthcheck.py"]
CMD ["atomctl", "serve", "judge"]
