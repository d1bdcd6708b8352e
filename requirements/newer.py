"""Print what the running environment has that differs from the lock files (for `make check-latest`).

One line per distribution whose installed version is not the locked one, or that no lock names:
the upgrades a `make lock` would take in, shown before the tests say whether they are safe.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

from packaging.utils import canonicalize_name

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def locked(paths: list[Path]) -> dict[str, str]:
    found: dict[str, str] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            if m := PIN.match(line):
                found[canonicalize_name(m.group(1))] = m.group(2)
    return found


def main(paths: list[str]) -> None:
    want = locked([Path(p) for p in paths])
    have = {canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    have.pop("llmbench", None)
    for name in sorted(have):
        if want.get(name) != have[name]:
            print(f"  {name} {want.get(name, '(not locked)')} -> {have[name]}")
    for name in sorted(set(want) - set(have)):
        print(f"  {name} {want[name]} -> (no longer needed)")


if __name__ == "__main__":
    main(sys.argv[1:])
