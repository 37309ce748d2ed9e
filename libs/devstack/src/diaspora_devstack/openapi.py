"""The services' OpenAPI documents, generated from their FastAPI apps and committed.

``docs/openapi/<service>.json`` is what each service's HTTP interface accepts and
answers, as the code declares it. CI checks the committed files are in step
(``python -m diaspora_devstack.openapi check``); ``write`` regenerates them.

A service is found through its ``diaspora.services`` entry point, whose ``build_app()``
gives its FastAPI app (diaspora_devstack.services). Building the app touches no
database or broker.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from diaspora_devstack.asyncapi import committed_diffs, find_root
from diaspora_devstack.services import Service, discover

OPENAPI_DIR = Path("docs/openapi")
COMMAND = "python -m diaspora_devstack.openapi"


def http_services() -> dict[str, Service]:
    """The services with an HTTP interface (a ``build_app`` in their entry point)."""
    return {name: s for name, s in discover().items() if hasattr(s.module, "build_app")}


def render(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


def generate() -> dict[Path, str]:
    """Every generated file (relative to the repository root) and its text."""
    generated = {}
    for name, service in http_services().items():
        spec = service.openapi()
        if spec is not None:
            generated[OPENAPI_DIR / f"{name}.json"] = render(spec)
    return generated


def stale(root: Path) -> list[str]:
    """Unified diffs of every committed document that differs from the code's."""
    generated = generate()
    diffs = committed_diffs(root, generated, context=2)
    for path in sorted((root / OPENAPI_DIR).glob("*.json")):
        if path.relative_to(root) not in generated:
            diffs.append(f"{path.relative_to(root)}: no such service any more\n")
    return diffs


def write(root: Path) -> list[Path]:
    generated = generate()
    changed = []
    for relative, text in generated.items():
        path = root / relative
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(relative)
    for path in sorted((root / OPENAPI_DIR).glob("*.json")):
        if path.relative_to(root) not in generated:
            path.unlink()
            changed.append(path.relative_to(root))
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=COMMAND, description="Generate and check docs/openapi/<service>.json."
    )
    parser.add_argument("command", choices=["write", "check"])
    parser.add_argument("--root", type=Path, help="repository root (default: found from cwd)")
    args = parser.parse_args(argv)
    root: Path = args.root or find_root(Path.cwd())
    if args.command == "write":
        changed = write(root)
        for path in changed:
            print(f"wrote {path}")
        if not changed:
            print("up to date")
        return 0
    diffs = stale(root)
    if diffs:
        print(
            f"The OpenAPI documents are out of date; run `{COMMAND} write` and commit them:\n",
            file=sys.stderr,
        )
        for diff in diffs:
            print(diff, file=sys.stderr)
        return 1
    print("OpenAPI documents are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
