#!/usr/bin/env bash
# Download, on this machine, the wheels that the lent GPU machine's image lacks
# (it reaches no package registry; its python3 is CPython 3.12 with NumPy, SciPy,
# CuPy, pytest and hypothesis already there). They land in .whl/, which git
# ignores and the device call carries: see benchmarks/gpu/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .whl
for spec in array-api-compat==1.16.0 array-api-strict==2.6.1 pydantic==2.14.4 \
            pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5; do
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "$spec"
done
ls -l .whl
