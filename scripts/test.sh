#!/usr/bin/env bash
# Set up everything the tests need (first run only) and run lint, types and the whole test suite:
# unit and real-model tests, the real llama.cpp server test, and headless-Chromium UI tests.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh "dev,ui,llm,pg" || { echo "[citeqa] setup failed"; exit 1; }
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "[citeqa] installing Debian chromium for the browser tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "[citeqa] could not install chromium; browser tests will be skipped"
  else
    echo "[citeqa] chromium not found and not root: browser tests will be skipped"
  fi
fi
export HF_HUB_OFFLINE=1
status=0
.venv/bin/ruff check src ui tests benchmarks || status=1
.venv/bin/mypy || status=1
.venv/bin/python -m pytest -q "$@"
rc=$?
if [ $rc -eq 5 ]; then
  echo "[citeqa] pytest collected no tests: treating as a failure"
  rc=1
fi
[ $rc -ne 0 ] && status=$rc
exit $status
