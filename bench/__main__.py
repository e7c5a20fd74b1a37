"""Run every benchmark module in bench/ (or those named on the command line) and summarise.

    python -m bench                  # all of them
    python -m bench upload_memory    # just one
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path


def discover() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)])
                  if not m.name.startswith("_"))


def run(name: str) -> tuple[int, float]:
    started = time.perf_counter()
    try:
        module = importlib.import_module(f"bench.{name}")
        code = module.main([])
    except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others
        traceback.print_exc()
        code = 2
    return int(code or 0), time.perf_counter() - started


def main(argv: list[str]) -> int:
    names = argv or discover()
    unknown = sorted(set(names) - set(discover()))
    if unknown:
        print(f"bench: no benchmark named {', '.join(unknown)}; have {', '.join(discover())}")
        return 2
    results = []
    for name in names:
        print(f"== bench.{name}", flush=True)
        code, seconds = run(name)
        results.append((name, code, seconds))
    print("== summary")
    for name, code, seconds in results:
        print(f"  {name:<24} {'OK' if code == 0 else f'FAILED ({code})':<12} {seconds:7.1f} s")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
