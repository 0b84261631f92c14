"""Print the pinned requirements of pyproject.toml for an image, one a line, for `pip install -r`.

    python requirements.py pyproject.toml                 # [project] dependencies (atom-base)
    python requirements.py pyproject.toml judge           # those + the judge extra
    python requirements.py --only-extras pyproject.toml gpu-services

The images install their dependencies from this list before the code is copied in, so a change to
the code alone rebuilds only the last layers. Extras that name the project itself
("atom[renderer]") are expanded. Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import re
import sys
import tomllib

_SELF = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*\[([^\]]+)\]\s*$")


def requirements(pyproject: dict, extras: list[str], core: bool = True) -> list[str]:
    project = pyproject["project"]
    name = project["name"].lower()
    optional = project.get("optional-dependencies", {})
    out: list[str] = list(project.get("dependencies", [])) if core else []
    seen: set[str] = set()

    def add(extra: str) -> None:
        if extra in seen:
            return
        if extra not in optional:
            raise SystemExit(f"pyproject.toml has no extra {extra!r}; it has {', '.join(sorted(optional))}")
        seen.add(extra)
        for req in optional[extra]:
            own = _SELF.match(req)
            if own and own.group(1).lower() == name:
                for inner in own.group(2).split(","):
                    add(inner.strip())
            else:
                out.append(req)

    for extra in extras:
        add(extra)
    return list(dict.fromkeys(out))


def main(argv: list[str]) -> int:
    core = "--only-extras" not in argv
    args = [a for a in argv if a != "--only-extras"]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    with open(args[0], "rb") as f:
        pyproject = tomllib.load(f)
    extras = [e for arg in args[1:] for e in arg.split(",") if e]
    print("\n".join(requirements(pyproject, extras, core)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
