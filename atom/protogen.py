"""Generate the Python gRPC code for protos/atom/v1 into atom/v1, reproducibly.

python -m atom.protogen          # regenerate
python -m atom.protogen --check  # exit 1 if atom/v1 is stale (the test suite runs this)
"""

from __future__ import annotations

import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT_DIR = ROOT / "atom" / "v1"


def proto_files() -> list[Path]:
    return sorted((PROTO_ROOT / "atom" / "v1").glob("*.proto"))


def generate(out_root: Path) -> Path:
    from grpc_tools import protoc

    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"
    files = [str(p.relative_to(PROTO_ROOT)) for p in proto_files()]
    rc = protoc.main(
        [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--python_out={out_root}",
            f"--pyi_out={out_root}",
            f"--grpc_python_out={out_root}",
            *files,
        ]
    )
    if rc != 0:
        raise SystemExit(f"protoc failed with exit code {rc}")
    out = out_root / "atom" / "v1"
    (out / "__init__.py").write_text('"""Generated gRPC code for protos/atom/v1 (python -m atom.protogen)."""\n')
    return out


def stale_files() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        names = sorted(p.name for p in fresh.iterdir() if p.is_file())
        have = sorted(p.name for p in OUT_DIR.glob("*") if p.is_file() and p.suffix in (".py", ".pyi"))
        stale = [n for n in names if not (OUT_DIR / n).exists() or not filecmp.cmp(fresh / n, OUT_DIR / n, shallow=False)]
        stale += [n for n in have if n not in names]
        return stale


def main(argv: list[str]) -> int:
    if "--check" in argv:
        stale = stale_files()
        if stale:
            print("generated gRPC code is stale: " + ", ".join(stale) + "; run `python -m atom.protogen`")
            return 1
        print("generated gRPC code is up to date")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        for old in OUT_DIR.glob("*_pb2*.py*"):
            old.unlink()
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        for p in fresh.iterdir():
            shutil.copy2(p, OUT_DIR / p.name)
    print(f"wrote {OUT_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
