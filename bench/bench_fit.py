"""Cold-start wall time of `gemmatui fit --json` against `python -c pass`.

Usage: python bench/bench_fit.py [--runs 15]

Each run is a fresh process (the import cost is the point). Reports the median and the
minimum of each, and the difference. Goal: `fit` under 150 ms on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def measure(cmd: list[str], runs: int, env: dict[str, str]) -> list[float]:
    timed(cmd, env)  # warm the page cache and .pyc files
    return [timed(cmd, env) for _ in range(runs)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GEMMATUI_CONFIG": os.path.join(tmp, "config.toml")}
        # Measure what an installed copy does: byte-code cached (some shells set
        # PYTHONDONTWRITEBYTECODE, which would recompile gemmatui on every start).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "gemmatui --help": [sys.executable, "-m", "gemmatui", "--help"],
            "gemmatui fit --json": [sys.executable, "-m", "gemmatui", "fit", "--json"],
            "gemmatui fit --vram 24G --json": [
                sys.executable, "-m", "gemmatui", "fit", "--vram", "24G", "--json",
            ],
        }
        results = {name: measure(cmd, args.runs, env) for name, cmd in cases.items()}
    base = statistics.median(results["python -c pass"])
    print(f"{'command':<32} {'median ms':>10} {'min ms':>8} {'over python':>12}")
    for name, times in results.items():
        med = statistics.median(times)
        print(f"{name:<32} {med * 1000:>10.1f} {min(times) * 1000:>8.1f} {(med - base) * 1000:>12.1f}")
    fit = statistics.median(results["gemmatui fit --json"]) * 1000
    print(f"\nfit --json: {fit:.0f} ms (goal < 150 ms): {'ok' if fit < 150 else 'OVER'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
