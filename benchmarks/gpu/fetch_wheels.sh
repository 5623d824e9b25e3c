#!/usr/bin/env bash
# Downloads, into .whl/ at the repository root, the wheels benchmarks/gpu_check.sh installs
# on the GPU machine (Python 3.12, JAX 0.11 preinstalled, no network there): BrainPy 2.9.0
# and the pure-Python packages it needs that the machine's image lacks. Run here, from the
# repository root, before the device call; .whl/ is kept out of git (.git/info/exclude)
# and travels with `carry=[".whl"]` (about 7 MB).
set -eu
grep -qx '/.whl/' "$(git rev-parse --git-common-dir)/info/exclude" 2>/dev/null ||
  echo '/.whl/' >>"$(git rev-parse --git-common-dir)/info/exclude"
PY=${PYTHON:-python3}
"$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  brainpy==2.9.0 brainstate==0.6.0 brainunit==0.6.0 brainevent==0.3.0 braintools==0.4.0 saiunit==0.6.0 \
  array_api_compat==1.16.0
ls -l .whl
