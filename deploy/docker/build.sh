#!/bin/sh
# Build atom-base, then the five service images and the controller, all tagged with the package
# version from pyproject.toml (never :latest). Run from anywhere:
#   deploy/docker/build.sh                      # atom-*:0.1.0
#   REGISTRY=ghcr.io/me deploy/docker/build.sh  # ghcr.io/me/atom-*:0.1.0 (then docker push them)
# Extra arguments go to every `docker build` (e.g. --build-arg TORCH_INDEX_URL=...).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/pyproject.toml" | head -n 1)
prefix=${REGISTRY:+$REGISTRY/}
docker build -f "$root/deploy/docker/base.Dockerfile" --build-arg ATOM_VERSION="$version" \
  -t "${prefix}atom-base:$version" "$@" "$root"
for image in generator renderer judge trainer evaluator controller; do
  docker build -f "$root/deploy/docker/$image.Dockerfile" --build-arg ATOM_VERSION="$version" \
    --build-arg BASE_IMAGE="${prefix}atom-base:$version" -t "${prefix}atom-$image:$version" "$@" "$root"
done
