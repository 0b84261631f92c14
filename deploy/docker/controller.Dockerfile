# atom controller: `atomctl`, the orchestrator. It holds no model: every stage is a gRPC call to
# the services (given with --endpoint or ATOM_ENDPOINTS), so it runs on the slim CPU image.
#
# Build from the repository root:
#   docker build -f deploy/docker/controller.Dockerfile -t atom-controller .
# Run (arguments go to atomctl):
#   docker run --rm atom-controller --store http://minio:9000/atom \
#       --endpoint generator=generator:50051 ... run-pipeline
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# The project depends on torch; the controller never runs a model, so the small CPU build does.
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

FROM ${PYTHON_IMAGE}
RUN useradd --uid 10001 --user-group --create-home --home-dir /home/atom --shell /usr/sbin/nologin atom
COPY --from=build /opt/atom /opt/atom
ENV PATH=/opt/atom/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    XDG_CACHE_HOME=/tmp/.cache \
    MPLCONFIGDIR=/tmp/.cache/matplotlib \
    MPLBACKEND=Agg \
    ATOM_CONTROLLER_METRICS_PORT=9100
LABEL org.opencontainers.image.title="atom-controller" \
      org.opencontainers.image.description="atomctl, the atom pipeline controller (metrics 9100)"
USER 10001:10001
WORKDIR /home/atom
EXPOSE 9100
# A batch command, not a server: nothing to probe. Its metrics port is up only while it runs.
HEALTHCHECK NONE
ENTRYPOINT ["atomctl"]
CMD ["--help"]
