#!/usr/bin/env bash
# Entry point on a fresh machine: installs uv and nox when missing, then runs nox.
#   ./go test [pytest args]      the test suite in every ci cell at once (what CI runs)
#   ./go repro [repro args]      the main job: verdicts in the default matrix cells + results/matrix.md
#   ./go nightly [pytest args]   the thorough Hypothesis profile (what the nightly workflow runs)
set -euo pipefail
cd "$(dirname "$0")"
export UV_PYTHON_DOWNLOADS=never
missing=()
command -v uv >/dev/null 2>&1 || missing+=("uv>=0.4")
command -v nox >/dev/null 2>&1 || missing+=("nox>=2024.4")
if ((${#missing[@]})); then
  python3 -m pip install -q --disable-pip-version-check "${missing[@]}"
fi
case "${1:-}" in
  test)    shift; exec nox -s ci -- "$@" ;;  # every ci cell at once
  nightly) shift; exec nox -s nightly -- "$@" ;;
  repro)   shift; exec nox -t default -- "$@" ;;  # default cells, then the matrix report
  *) echo "usage: ./go test [pytest args] | ./go repro [repro args] | ./go nightly [pytest args]" >&2; exit 2 ;;
esac
