#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: clang for tinygrad's CPU device, a virtual
# environment in .venv with the project and its test tools. Sourced by the README's commands.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! command -v clang >/dev/null 2>&1; then
  echo "[bootstrap] clang not found: tinygrad's CPU device needs it; installing Debian package clang"
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang >/dev/null \
      || { echo "[bootstrap] ERROR: could not install clang; install it by hand (apt-get install clang)" >&2; exit 1; }
  else
    echo "[bootstrap] ERROR: clang is missing and apt-get is not available; install clang and re-run" >&2; exit 1
  fi
fi
PY="${PYTHON:-python3}"
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  echo "[bootstrap] creating virtual environment .venv"
  "$PY" -m venv "$ROOT/.venv"
fi
STAMP="$ROOT/.venv/.installed-$(sha1sum "$ROOT/pyproject.toml" | cut -c1-12)"
if [ ! -f "$STAMP" ]; then
  echo "[bootstrap] installing the project and test tools into .venv"
  "$ROOT/.venv/bin/python" -m pip install -q --upgrade pip
  "$ROOT/.venv/bin/python" -m pip install -q -e "$ROOT[test]"
  rm -f "$ROOT"/.venv/.installed-*; touch "$STAMP"
fi
