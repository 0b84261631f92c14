# atom controller: `atomctl`, the orchestrator. Every stage is a gRPC call to the services (given with
# --endpoint or ATOM_ENDPOINTS), and so is the first run's model building: the trainer service
# pretrains the tiny base model and trains the embedded evaluator. The controller trains and holds
# no model; it carries the CPU build of torch only to import a released MotionGPT checkpoint
# (atom/mgpt/checkpoint.py reads it with PyTorch's weights_only unpickler) and to record versions.
#
# Build from the repository root, after atom-base (deploy/docker/build.sh builds all, in order):
#   docker build -f deploy/docker/controller.Dockerfile -t atom-controller:0.1.0 .
# Run (arguments go to atomctl):
#   docker run --rm atom-controller:0.1.0 --store http://minio:9000/atom \
#       --endpoint generator=generator:50051 ... run-pipeline
ARG BASE_IMAGE=atom-base:0.1.0
FROM ${BASE_IMAGE}
ARG ATOM_VERSION=0.1.0
# (atom-base sets these too; repeated so that this file holds when built FROM another base)
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
ARG ATOM_EXTRAS=controller
# torch for the CPU (about 200 MB instead of several GB of CUDA libraries), from PyTorch's own index before the rest (pyproject pins torch==2.13.0, which the
# 2.13.0+cpu build satisfies, so the extras install below keeps it).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
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
ENV ATOM_CONTROLLER_METRICS_PORT=9100
LABEL org.opencontainers.image.title="atom-controller" \
      org.opencontainers.image.version="${ATOM_VERSION}" \
      org.opencontainers.image.description="atomctl, the atom pipeline controller (metrics 9100)"
USER 10001:10001
WORKDIR /home/atom
EXPOSE 9100
# A batch command, not a server: nothing to probe. Its metrics port is up only while it runs.
HEALTHCHECK NONE
ENTRYPOINT ["atomctl"]
CMD ["--help"]
