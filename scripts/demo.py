"""`make demo`: the whole pipeline on the built-in synthetic world, stage by stage.

Each stage is the real Hydra app a user would run; a failing stage stops the demo with its exit code.
"""

from __future__ import annotations

import subprocess
import sys
import time

from rich.console import Console

STAGES: list[tuple[str, list[str]]] = [
    ("data: synthetic world -> processed dataset", ["recsys.cli.data", "data=synthetic"]),
]


def main() -> int:
    console = Console()
    total = time.perf_counter()
    for title, cmd in STAGES:
        console.rule(f"[bold]{title}")
        t0 = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", *cmd])
        if code != 0:
            console.print(f"[red]stage failed ({code}): {' '.join(cmd)}")
            return code
        console.print(f"[green]done in {time.perf_counter() - t0:.1f}s")
    console.rule(f"[bold]demo finished in {time.perf_counter() - total:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
