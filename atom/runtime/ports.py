"""Where each service listens by default. Compose, Kubernetes and the embedded launcher all use
these numbers; tests/deploy checks that the deployment files agree with them."""

SERVICES = ("generator", "renderer", "judge", "trainer", "evaluator")

GRPC_PORTS = {"generator": 50051, "renderer": 50052, "judge": 50053, "trainer": 50054, "evaluator": 50055}
METRICS_PORTS = {"generator": 9101, "renderer": 9102, "judge": 9103, "trainer": 9104, "evaluator": 9105}
CONTROLLER_METRICS_PORT = 9100

# Environment variables a service reads at start (see atom.runtime.server.ServeConfig).
ENV_VARS = ("ATOM_HOST", "ATOM_PORT", "ATOM_METRICS_PORT", "ATOM_STORE_URL", "ATOM_LOG_LEVEL")


def check_service(name: str) -> str:
    if name not in SERVICES:
        raise ValueError(f"unknown service {name!r}; expected one of: {', '.join(SERVICES)}")
    return name
