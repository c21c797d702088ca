#!/usr/bin/env bash
# Beacon's setup-and-go script. Two verbs, one per README command:
#   bash scripts/dev.sh run    set up, then run Beacon on embedded defaults (SQLite, packaged model,
#                              console mode when no Slack tokens are set)
#   bash scripts/dev.sh test   set up, then run the test suite
# Setup is idempotent: a virtualenv in .venv (reusing system packages when present), the CPU build
# of torch on machines without an NVIDIA GPU, then `pip install -e .[dev]`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
VENV="${BEACON_VENV:-.venv}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
TORCH_CPU_INDEX="${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$PY" -m venv --system-site-packages "$VENV"
  fi
  local vpy="$VENV/bin/python"
  if ! "$vpy" -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
      say "NVIDIA GPU found: installing the CUDA build of torch"
      "$vpy" -m pip install -q "torch>=2.2"
    elif "$vpy" -m pip install -q --no-index "torch==$TORCH_VERSION" 2>/dev/null; then
      say "no GPU: installed the local CPU wheel of torch $TORCH_VERSION"
    else
      say "no GPU: installing the CPU build of torch from $TORCH_CPU_INDEX"
      "$vpy" -m pip install -q "torch==$TORCH_VERSION" --index-url "$TORCH_CPU_INDEX" \
        || "$vpy" -m pip install -q torch --index-url "$TORCH_CPU_INDEX"
    fi
  fi
  say "installing Beacon and its dependencies (pip install -e .[dev])"
  "$vpy" -m pip install -q --disable-pip-version-check -e ".[dev]"
  export PATH="$PWD/$VENV/bin:$PATH"
}

case "${1:-}" in
  run)
    shift
    setup
    export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
    exec "$VENV/bin/beacon" run "$@"
    ;;
  test)
    shift
    setup
    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
    exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
    ;;
  setup)
    setup
    ;;
  *)
    echo "usage: bash scripts/dev.sh run|test|setup" >&2
    exit 64
    ;;
esac
