"""Start-up cost of the autoload ``.pth`` hook when ``brainpy`` is never imported.

The budget is < 5 ms: a Python process that never imports ``brainpy`` must not pay for
the hook measurably (it imports only ``sys`` and ``os``; see
``brainpy_poisson_plugin/plugin/autoload.py``). Method: two throw-away venvs that differ ONLY in the
plugin's ``brainpy_poisson_plugin_autoload.pth``; both reach the installed package through
a plain path line (which does not run the ``.pth`` files of the environment it points
to). ``python -c pass`` is run alternately in each, ``--runs`` times, and the medians of
the wall-clock times are compared. The file under test is the installed one.

    python benchmarks/startup_cost.py [--runs 200] [--json]

Exit status 1 if the median difference is 5 ms or more.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

PTH = "brainpy_poisson_plugin_autoload.pth"
BUDGET_MS = 5.0


def _installed_pth() -> Path:
    for d in dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]):
        if (Path(d) / PTH).is_file():
            return Path(d) / PTH
    sys.exit(f"{PTH} is not installed in this environment ({sys.prefix}); pip install the wheel first")


def _make_venv(root: Path, site_of_target: str, with_hook: Path | None) -> str:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    py = str(root / "bin" / "python")
    site = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "zz_target.pth").write_text(site_of_target + "\n")
    if with_hook is not None:
        shutil.copy(with_hook, Path(site) / PTH)
    return py


def _time_once(py: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([py, "-c", "pass"], env=env, check=True)
    return (time.perf_counter() - t0) * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    pth = _installed_pth()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "BRAINPY_"))}
    with tempfile.TemporaryDirectory() as tmp:
        without = _make_venv(Path(tmp) / "without", str(pth.parent), None)
        with_ = _make_venv(Path(tmp) / "with", str(pth.parent), pth)
        check = subprocess.run(
            [
                with_,
                "-c",
                "import sys; a = sys.modules.get('_brainpy_poisson_plugin_autoload'); "
                "print(getattr(a, 'state', None), sorted(m for m in sys.modules if m.split('.')[0] in "
                "('jax', 'brainpy', 'pluggy', 'numpy', 'brainpy_poisson_plugin', 'typing')))",
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout.strip()
        for py in (without, with_):  # warm the OS caches and write the .pyc files
            for _ in range(5):
                _time_once(py, env)
        a, b = [], []
        for _ in range(args.runs):
            a.append(_time_once(without, env))
            b.append(_time_once(with_, env))
    result = {
        "runs": args.runs,
        "median_without_ms": statistics.median(a),
        "median_with_ms": statistics.median(b),
        "median_cost_ms": statistics.median(b) - statistics.median(a),
        "hook_state_and_heavy_modules": check,
        "budget_ms": BUDGET_MS,
        "python": sys.version.split()[0],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"python -c pass, median of {args.runs} alternating runs:")
        print(f"  without the .pth  {result['median_without_ms']:.2f} ms")
        print(f"  with the .pth     {result['median_with_ms']:.2f} ms")
        print(f"  cost              {result['median_cost_ms']:+.2f} ms (budget < {BUDGET_MS} ms)")
        print(f"  hook state / heavy modules at start-up: {check}")
    return 0 if result["median_cost_ms"] < BUDGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
