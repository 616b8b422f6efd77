#!/usr/bin/env bash
# Create .venv and install citeqa with the given extras (e.g. "ui", "dev,ui,llm").
# torch==2.13.0 (CPU build) is installed first: any other version would pull gigabytes of CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-ui}"
py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[citeqa] creating .venv with $($py --version)"
  "$py" -m venv .venv
fi
stamp=".venv/.citeqa-installed-$(echo "$extras" | tr ',' '-')"
want="$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
.venv/bin/python -m pip install -q --upgrade pip
if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  echo "[citeqa] installing torch==2.13.0 (CPU)"
  .venv/bin/python -m pip install -q "torch==2.13.0"
fi
if [[ ",$extras," == *",llm,"* ]]; then
  echo "[citeqa] the llm extra compiles llama-cpp-python (about 6-8 minutes the first time)"
fi
echo "[citeqa] installing citeqa[$extras]"
.venv/bin/python -m pip install -q -e ".[$extras]"
echo "$want" > "$stamp"
