"""`snakemake --lint`, failing on any finding but the deliberate ones (each explained at its rule).

Run from the repository root: `.venv/bin/python workflow/scripts/lint.py` (.ci/run does).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

# (rule or file, lint title) -> where the reason is written down.
ALLOWED = {
    ("report", "Param runs is a prefix of input or output file but hardcoded"): (
        "workflow/rules/report.smk"
    ),
}


def findings(text: str) -> list[tuple[str, str]]:
    found, owner = [], ""
    for line in text.splitlines():
        head = re.match(r"Lints for (?:rule (\S+)|snakefile (\S+))", line)
        if head:
            owner = head.group(1) or head.group(2)
        item = re.match(r"\s+\* (.+?):?$", line)
        if item:
            found.append((owner, item.group(1)))
    return found


def main() -> int:
    snakemake = Path(sys.executable).with_name("snakemake")
    result = subprocess.run([str(snakemake), "--lint"], capture_output=True, text=True)
    unexplained = [f for f in findings(result.stdout + result.stderr) if f not in ALLOWED]
    for owner, title in unexplained:
        print(f"snakemake --lint: {owner}: {title}", file=sys.stderr)
    if result.returncode not in (0, 1) or (
        result.returncode == 1 and not findings(result.stdout + result.stderr)
    ):
        print(result.stderr[-2000:], file=sys.stderr)
        return 1
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
