#!/usr/bin/env bash
# The Paddle Lite toolchain: a Python 3.10 venv with paddlepaddle 2.6.2 (the last Paddle that
# writes the .pdmodel format Lite's opt reads) and paddlelite 2.13rc0 (wheels exist only for
# Python <= 3.10). Usage: bash deploy/lite/setup.sh [VENV_DIR]   (default: .venv-lite)
set -euo pipefail
venv="${1:-.venv-lite}"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import paddle, paddlelite" 2>/dev/null; then
  echo "lite toolchain: $venv is ready"; exit 0
fi
py=""
for cand in "PYENV_VERSION=3.10.13 python3.10" "python3.10"; do
  if env $cand -c "import sys; assert sys.version_info[:2] == (3, 10)" 2>/dev/null; then py="$cand"; break; fi
done
if [ -z "$py" ]; then
  echo "deploy/lite/setup.sh: Python 3.10 was not found (pyenv install 3.10.13, or put python3.10 on PATH)" >&2
  exit 1
fi
env $py -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/pip" install -q "paddlepaddle==2.6.2" "paddlelite==2.13rc0" "numpy<2" \
  "opencv-python-headless==4.10.0.84"
echo "lite toolchain: $venv is ready"
