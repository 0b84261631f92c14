"""Which module builds each service's ServiceSpec. `atomctl serve NAME` and the embedded
launcher go through here, so a container and a laptop run the same code path."""

from __future__ import annotations

import importlib

from atom.runtime.ports import check_service
from atom.runtime.server import ServiceSpec


def build_spec(name: str, store_url: str) -> ServiceSpec:
    check_service(name)
    module = importlib.import_module(f"services.{name}.server")
    return module.build_spec(store_url)
