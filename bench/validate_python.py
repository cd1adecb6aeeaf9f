#!/usr/bin/env python3
"""Validate every deposit of an archive with Python `jsonschema`, the library CAP uses.

    python3 bench/validate_python.py ARCHIVE_DIR [--json] [--show N]

This is the baseline that capsule's own validation is compared against. It does what a
CAP-style server does per deposit: read deposits/<id>/deposit.json, parse it, pick the
schema named by its `$schema`, and validate it with Draft7Validator and a FormatChecker.

Every schema under schemas/ is compiled once, before the clock starts; the timed part is
listing, reading, parsing and validating the deposits (a deposit whose schema is missing
or whose JSON does not parse counts as invalid). `required` is enforced (record rules).

Output: one line `N deposits, E invalid, T s, R deposits/s`, or with --json an object
{"deposits", "invalid", "seconds", "per_second"}. The first few problems go to stderr.

Note: jsonschema checks the "uri" format only when `rfc3987` or `rfc3986-validator` is
installed; without it, "uri" is not checked (date and email always are).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

try:
    from jsonschema import Draft7Validator
except ImportError:  # pragma: no cover - environment problem, say how to fix it
    sys.exit("validate_python: the `jsonschema` package is missing: pip install jsonschema")

try:
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7
except ImportError:  # jsonschema < 4.18 has no referencing; internal $refs still work
    Registry = None

CAP_URL = re.compile(r"/schemas/(?:deposits/records/|records/)?(?P<name>[A-Za-z0-9_.-]+?)-v(?P<ver>\d+\.\d+\.\d+)\.json$")
DASH_V = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+?)-v(?P<ver>\d+\.\d+\.\d+)$")


def schema_key(ref: str) -> tuple[str, str] | None:
    """Map a deposit's `$schema` to (name, version), following the forms DESIGN.md allows."""
    if "/" in ref and not ref.startswith(("http://", "https://")):
        name, _, ver = ref.rpartition("/")
        return name, ver
    m = CAP_URL.search(ref) or DASH_V.match(ref)
    if m:
        return m.group("name"), m.group("ver")
    return None


def load_validators(archive: Path) -> dict[tuple[str, str], Draft7Validator]:
    schemas: dict[tuple[str, str], dict] = {}
    root = archive / "schemas"
    for path in sorted(root.rglob("*.json")):
        rel = path.relative_to(root)
        name = "/".join(rel.parts[:-1])
        with open(path, "rb") as f:
            schemas[(name, path.stem)] = json.load(f)

    registry = None
    if Registry is not None:
        # Cross-schema $refs resolve inside the archive, never over the network.
        registry = Registry()
        for (name, ver), contents in schemas.items():
            resource = Resource.from_contents(contents, default_specification=DRAFT7)
            registry = registry.with_resource(f"{name}/{ver}", resource)
            if isinstance(contents, dict) and isinstance(contents.get("$id"), str):
                registry = registry.with_resource(contents["$id"], resource)

    validators = {}
    for key, contents in schemas.items():
        Draft7Validator.check_schema(contents)
        kwargs = {"format_checker": Draft7Validator.FORMAT_CHECKER}
        if registry is not None:
            kwargs["registry"] = registry
        validators[key] = Draft7Validator(contents, **kwargs)
    return validators


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("archive", type=Path)
    ap.add_argument("--json", action="store_true", help="print a JSON object instead of a line")
    ap.add_argument("--show", type=int, default=5, metavar="N",
                    help="print the first N problems to stderr (default 5)")
    args = ap.parse_args()

    deposits_dir = args.archive / "deposits"
    if not deposits_dir.is_dir():
        print(f"validate_python: no deposits/ in {args.archive}", file=sys.stderr)
        return 2
    validators = load_validators(args.archive)

    count = invalid = shown = 0

    def report(dep_id: str, message: str) -> None:
        nonlocal shown
        if shown < args.show:
            print(f"{dep_id}: {message}", file=sys.stderr)
            shown += 1

    started = time.perf_counter()
    with os.scandir(deposits_dir) as entries:
        ids = sorted(e.name for e in entries if e.is_dir())
    for dep_id in ids:
        path = os.path.join(deposits_dir, dep_id, "deposit.json")
        try:
            with open(path, "rb") as f:
                deposit = json.load(f)
        except FileNotFoundError:
            continue  # a folder without deposit.json is not a deposit
        except ValueError as e:
            count += 1
            invalid += 1
            report(dep_id, f"invalid JSON: {e}")
            continue
        count += 1
        ref = deposit.get("$schema") if isinstance(deposit, dict) else None
        key = schema_key(ref) if isinstance(ref, str) else None
        validator = validators.get(key) if key else None
        if validator is None:
            invalid += 1
            report(dep_id, f"unknown $schema {ref!r}")
            continue
        error = next(validator.iter_errors(deposit), None)
        if error is not None:
            invalid += 1
            pointer = "/" + "/".join(str(p) for p in error.absolute_path)
            report(dep_id, f"{pointer}: {error.message}")
    seconds = time.perf_counter() - started

    per_second = count / seconds if seconds > 0 else 0.0
    if args.json:
        print(json.dumps({"deposits": count, "invalid": invalid,
                          "seconds": round(seconds, 3), "per_second": round(per_second, 1)}))
    else:
        print(f"{count} deposits, {invalid} invalid, {seconds:.2f} s, {per_second:.0f} deposits/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
