#!/usr/bin/env bash
# On the lent GPU machine, in one call (README.md beside this file says how to make it):
# the CuPy tests, then the GPU benchmark rows within a budget. Logs and the rows' JSON go
# to $OUT, which comes back.
set -uo pipefail
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
OUT=${OUT:-/tmp/itermap-gpu}
mkdir -p "$OUT"
BUDGET=${BUDGET:-300}  # seconds for the benchmark rows
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || { echo "wheels missing: run benchmarks/gpu/fetch_wheels.sh here first"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
  python3 -c "import sys, numpy, scipy, cupy; print(sys.version.split()[0], 'numpy', numpy.__version__,
'scipy', scipy.__version__, 'cupy', cupy.__version__, 'CUDA runtime', cupy.cuda.runtime.runtimeGetVersion())"
} 2>&1 | tee "$OUT/machine.txt"
# 1. every test parametrized over CuPy (the xp fixture's "cupy"; notebooks need Jupyter)
timeout 240 python3 -m pytest -q -p no:cacheprovider -o addopts="" -rfEs \
  --continue-on-collection-errors -k "cupy and not notebook" tests 2>&1 | tee "$OUT/pytest_cupy.log"
echo "pytest exit status ${PIPESTATUS[0]}"
# 2. the GPU benchmark rows
timeout $((BUDGET + 120)) python3 -m benchmarks.gpu --budget "$BUDGET" --json "$OUT/gpu_rows.json" \
  2>&1 | tee "$OUT/gpu_bench.log"
