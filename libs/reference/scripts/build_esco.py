"""Build the compact ESCO / ISCO-08 files shipped in ``diaspora_reference/data``.

Reads the ESCO v1.0 CSV download (ISCO-08 groups, occupations, skills, French and
English) and writes three gzip'd JSON files holding only what the platform uses:
codes, URIs, preferred and alternative labels (descriptions and definitions are
dropped). Run it again when a new ESCO release is taken:

    uv run --frozen python libs/reference/scripts/build_esco.py /path/to/esco

Source: ESCO, © European Union; reuse authorised provided the source is
acknowledged (Commission Decision 2011/833/EU).
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1] / "src" / "diaspora_reference" / "data"
OCCUPATION_PREFIX = "http://data.europa.eu/esco/occupation/"
SKILL_PREFIX = "http://data.europa.eu/esco/skill/"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _alts(text: str, preferred: str) -> list[str]:
    seen: list[str] = []
    for line in text.splitlines():
        label = line.strip()
        if label and label != preferred and label not in seen:
            seen.append(label)
    return seen


def _by_uri(path: Path) -> dict[str, dict[str, str]]:
    return {row["conceptUri"]: row for row in _rows(path)}


def _write(name: str, payload: Any) -> None:
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    # mtime=0: the same input gives the same bytes (no spurious diffs).
    with gzip.GzipFile(DATA / name, "wb", compresslevel=9, mtime=0) as out:
        out.write(raw)
    print(f"{name}: {(DATA / name).stat().st_size:,} bytes")


def build(source: Path) -> None:
    fr = {r["code"]: r for r in _rows(source / "ISCOGroups_fr.csv")}
    en = {r["code"]: r for r in _rows(source / "ISCOGroups_en.csv")}
    if set(fr) != set(en):
        raise SystemExit("ISCO groups differ between the French and English files")
    # [code, label_fr, label_en], sorted by code: the parent is the code less its last digit.
    groups = [[c, fr[c]["preferredLabel"], en[c]["preferredLabel"]] for c in sorted(fr)]
    _write("isco08.json.gz", {"source": "ESCO v1 ISCOGroups", "groups": groups})

    occ_fr, occ_en = _by_uri(source / "occupations_fr.csv"), _by_uri(source / "occupations_en.csv")
    occupations = []
    for uri in sorted(occ_en):
        e, f = occ_en[uri], occ_fr[uri]
        if not uri.startswith(OCCUPATION_PREFIX) or e["iscoGroup"] not in fr:
            raise SystemExit(f"unexpected occupation {uri} (ISCO {e['iscoGroup']})")
        occupations.append(
            [
                uri.removeprefix(OCCUPATION_PREFIX),
                e["iscoGroup"],
                f["preferredLabel"],
                e["preferredLabel"],
                _alts(f["altLabels"], f["preferredLabel"]),
                _alts(e["altLabels"], e["preferredLabel"]),
            ]
        )
    _write(
        "esco_occupations.json.gz",
        {"source": "ESCO v1 occupations", "prefix": OCCUPATION_PREFIX, "occupations": occupations},
    )

    sk_fr, sk_en = _by_uri(source / "skills_fr.csv"), _by_uri(source / "skills_en-us.csv")
    skills = []
    for uri in sorted(sk_en):
        e, f = sk_en[uri], sk_fr[uri]
        if not uri.startswith(SKILL_PREFIX):
            raise SystemExit(f"unexpected skill {uri}")
        kind = "knowledge" if e["skillType"] == "knowledge" else "skill"
        skills.append(
            [
                uri.removeprefix(SKILL_PREFIX),
                kind,
                f["preferredLabel"],
                e["preferredLabel"],
                _alts(f["altLabels"], f["preferredLabel"]),
                _alts(e["altLabels"], e["preferredLabel"]),
            ]
        )
    _write(
        "esco_skills.json.gz",
        {"source": "ESCO v1 skills", "prefix": SKILL_PREFIX, "skills": skills},
    )


if __name__ == "__main__":
    build(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/esco"))
