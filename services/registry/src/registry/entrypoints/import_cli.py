"""`registry-import FILE`: upload an embassy list and follow the import with a progress bar.

    export REGISTRY_TOKEN=$(uv run devstack token --role embassy_officer --embassy fr-paris)
    uv run registry-import membres.xlsx --mode partial --consent signed_form \\
        --url http://127.0.0.1:8080/api/registry --errors membres-erreurs.csv

The file goes to ``POST /imports`` (the service validates and registers each row
in the background); the bar follows ``GET /imports/{id}``; at the end the counts
are printed and, when rows were rejected, the error report is saved. Exit code
0 when every row was imported, 1 when some were rejected, 2 on failure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm  # type: ignore[import-untyped]

DEFAULT_URL = "http://127.0.0.1:8080/api/registry"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="registry-import", description="Import a list of members (CSV or XLSX)."
    )
    parser.add_argument("file", type=Path, help="CSV (UTF-8 or Windows-1252, ; or ,) or XLSX")
    parser.add_argument(
        "--url", default=os.environ.get("REGISTRY_URL", DEFAULT_URL), help="registry API base URL"
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("REGISTRY_TOKEN"),
        help="bearer token (default: $REGISTRY_TOKEN)",
    )
    parser.add_argument("--mode", choices=["partial", "all_or_nothing"], default="partial")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument(
        "--consent",
        choices=["signed_form", "in_person"],
        default="signed_form",
        help="how the people listed consented to being registered",
    )
    parser.add_argument("--consent-reference", default=None, help="e.g. the register's number")
    parser.add_argument("--errors", type=Path, default=None, help="where to save the error report")
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between progress reads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def _problem(response: httpx.Response) -> str:
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    return f"{body.get('title', response.status_code)}: {body.get('detail', '')}".rstrip(": ")


def run(args: argparse.Namespace, client: httpx.Client) -> int:
    if not args.file.is_file():
        print(f"registry-import: no such file {args.file}", file=sys.stderr)
        return 2
    form: dict[str, str] = {"mode": args.mode, "consent_method": args.consent}
    if args.batch_size:
        form["batch_size"] = str(args.batch_size)
    if args.consent_reference:
        form["consent_reference"] = args.consent_reference
    with args.file.open("rb") as handle:
        response = client.post(
            "/imports",
            files={"file": (args.file.name, handle)},
            data=form,
            # A retried upload (network hiccup) does not import the list twice.
            headers={"Idempotency-Key": f"registry-import-{uuid.uuid4()}"},
        )
    if response.status_code not in (200, 202):
        print(f"registry-import: refused: {_problem(response)}", file=sys.stderr)
        return 2
    job: dict[str, Any] = response.json()
    print(
        f"import {job['id']}: {job['total_rows']} rows ({job['format']}"
        + (f", {job['encoding']}, '{job['delimiter']}'" if job["format"] == "csv" else "")
        + ")",
        file=sys.stderr,
    )
    if job["ignored_columns"]:
        print(f"columns not imported: {', '.join(job['ignored_columns'])}", file=sys.stderr)
    bar = tqdm(
        total=job["total_rows"], unit="row", disable=args.no_progress, file=sys.stderr, leave=True
    )
    try:
        while job["status"] in ("queued", "running"):
            time.sleep(args.poll)
            reply = client.get(f"/imports/{job['id']}")
            if reply.status_code != 200:
                print(f"registry-import: {_problem(reply)}", file=sys.stderr)
                return 2
            job = reply.json()
            bar.update(job["processed_rows"] - bar.n)
            bar.set_postfix(
                accepted=job["accepted"], duplicates=job["duplicates"], rejected=job["rejected"]
            )
    finally:
        bar.close()
    print(
        f"{job['status']}: {job['processed_rows']}/{job['total_rows']} rows, "
        f"{job['accepted']} accepted, {job['duplicates']} flagged as possible duplicates "
        f"(registered, for review), {job['rejected']} rejected",
    )
    if job["status"] == "failed":
        print(f"registry-import: the import stopped: {job['error']}", file=sys.stderr)
    if job["rejected"]:
        target = args.errors or args.file.with_name(args.file.stem + "-errors.csv")
        with client.stream("GET", f"/imports/{job['id']}/errors.csv") as report:
            report.raise_for_status()
            with target.open("wb") as out:
                for chunk in report.iter_bytes():
                    out.write(chunk)
        print(f"error report: {target}")
    if job["status"] == "failed":
        return 2
    return 1 if job["rejected"] else 0


def main(argv: list[str] | None = None) -> None:
    args = _arguments(argv)
    if not args.token:
        print("registry-import: give a bearer token (--token or REGISTRY_TOKEN)", file=sys.stderr)
        sys.exit(2)
    headers = {"Authorization": f"Bearer {args.token}"}
    with httpx.Client(base_url=args.url.rstrip("/"), headers=headers, timeout=120) as client:
        try:
            sys.exit(run(args, client))
        except httpx.HTTPError as error:
            print(f"registry-import: {error}", file=sys.stderr)
            sys.exit(2)


if __name__ == "__main__":
    main()
