#!/usr/bin/env bash
# The GPU side of the replication, on the offline H200 (10-minute calls; only $OUT comes back, at most 8 files of
# 16 MiB, 64 MiB in all). One call runs one STEP of make.sh and leaves in $OUT what must come back.
#
#   bash results/2026-12-04-replication-minilm/device.sh pretrain [ARM ...]   # pack + arms (default: all 3) + check + cka
#   bash results/2026-12-04-replication-minilm/device.sh cka                  # check + cka (if pretrain stopped before)
#   bash results/2026-12-04-replication-minilm/device.sh finetune I/N         # shard I of N of the fine-tuning grid
#   bash results/2026-12-04-replication-minilm/device.sh export ARM           # a checkpoint as <=15 MiB chunks, for a later lease
# EXPORT=ARM (pretrain, finetune) also exports that checkpoint in the same call; THEN_FINETUNE=I/N (pretrain)
# fine-tunes that shard for the time left after cka. EXPECT_WEIGHTS="twin-s0=75d072adc9e4 ..." (pretrain, for a
# lease that rebuilds checkpoints of an earlier one instead of carrying them): the rebuilt weights must hash as the
# records say, else THEN_FINETUNE runs FALLBACK_MODELS (or nothing). At most 8 files come back: pretrain.tar.xz
# (logs, pack meta, check and cka output), STEP.log, records-IofN.tar.xz, and an export's 5 files.
#
# Carried (pack.sh prepares them here): .devdata/minilm, .devdata/data.tar.xz, .devdata/repl.tar.xz, .whl, and
# for a lease that fine-tunes a checkpoint pretrained in an earlier one, .devdata/ckpt/ARM (reassemble.sh).
# State kept on the machine between the calls of one lease: runs/replication/ (git-ignored: pack, checkpoints,
# records). So: pretrain once per lease, then fine-tune the shards in the following calls of the same lease.
# Records of earlier leases travel with the working tree (results/…/records) and are skipped by the sweep.
# Env: LIMIT_S (default 560): the step stops in time to pack $OUT; MODELS, SEEDS, TASKS, RUN_ARGS... as make.sh;
# INSTALL=0 skips the wheel installs (a dry run in an environment that has biobench).
set -uo pipefail
START=$(date +%s)
HERE=results/2026-12-04-replication-minilm
[ -f "$HERE/make.sh" ] || { echo "device.sh: run from the repository root" >&2; exit 2; }
: "${OUT:?device.sh: OUT (the folder that comes back) is not set}"
STEP=${1:?device.sh: STEP expected (pretrain, cka, finetune I/N, export ARM)}; shift
LIMIT_S=${LIMIT_S:-560}
W=$PWD/runs/replication
mkdir -p "$W/ckpt" "$W/records"
exec > >(tee -a "$OUT/$STEP.log") 2>&1
left() { echo $(( LIMIT_S - ($(date +%s) - START) )); }

# ---- set-up (benchmarks/README.md, "On a GPU machine without internet") ----
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
if [ "${INSTALL:-1}" = 1 ]; then  # INSTALL=0: use the current environment (the CPU dry run)
    python3 -m pip install -q --no-index --no-deps --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -2
    # The replication's code is pinned: .devdata/pinned/biobench-*.whl, built from commit 5c35c17 (source hash
    # 0027bdcd41e4, the code of the first lease's records), when carried; else the working tree.
    pinned=$(ls .devdata/pinned/biobench-*.whl 2>/dev/null | head -1)
    python3 -m pip install -q --no-index --no-deps --no-build-isolation --upgrade --target /tmp/bb "${pinned:-.}" 2>&1 | tail -2
    echo "biobench: ${pinned:-the working tree}"
    export PYTHONPATH=/tmp/bb:/tmp/site
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
[ -d .devdata/data ] || tar -C .devdata -xJf .devdata/data.tar.xz
[ -d "$W/corpus-train" ] || { [ -f .devdata/repl.tar.xz ] && tar -C "$W" -xJf .devdata/repl.tar.xz; }
for carried in .devdata/ckpt/*/; do  # checkpoints of an earlier lease (reassemble.sh)
    [ -d "$carried" ] && [ ! -e "$W/ckpt/$(basename "$carried")" ] && ln -s "$PWD/$carried" "$W/ckpt/$(basename "$carried")"
done
cp -rn "$HERE/records/." "$W/records/" 2>/dev/null || true   # records of earlier leases: the sweep skips them
export DATA_DIR=$PWD/.devdata/data MINILM=$PWD/.devdata/minilm W RECORDS=$W/records OUT_DIR=$OUT
export MODELS_ROOT=/tmp/replication-models  # record folders are named after this path: the same in every lease
touch "$W/.call-start"
echo "set-up: $(( $(date +%s) - START )) s"

step() { timeout --signal=TERM --kill-after=20 "$(( $(left) - ${RESERVE_S:-40} ))" bash "$HERE/make.sh" "$@"; }
export_arm() {  # a finished checkpoint as 3 chunks of <=15 MiB + its other files + its sha256 (5 files back)
    local arm=$1 dir=$W/ckpt/$1
    [ -f "$dir/.bf16" ] || { echo "device.sh export: $dir is not a finished, bf16-rounded checkpoint"; return 2; }
    split -b 15M -d "$dir/model.safetensors" "$OUT/$arm.safetensors.part"
    tar -C "$dir" -cJf "$OUT/$arm.files.tar.xz" --exclude model.safetensors --exclude checkpoint.pt .
    (cd "$dir" && sha256sum model.safetensors) > "$OUT/$arm.sha256"
    echo "exported $arm: $(ls "$OUT/$arm".* | wc -l) files"
}
finetune() {  # the grid's shard $1 (all cells not recorded yet, with 0/1) for the time left; its records come back
    export SHARD=$1
    step finetune || rc=$?
    local name=records-${SHARD/\//of}
    (cd "$W/records" && find . -type f -newer "$W/.call-start" | tar -cJf "$OUT/$name.tar.xz" -T -)
    echo "$(tar -tJf "$OUT/$name.tar.xz" | grep -c '\.json$') record files written in this call -> $name.tar.xz"
}
expect_weights() {  # EXPECT_WEIGHTS="ARM=SHA_PREFIX ...": are the rebuilt checkpoints those the records name?
    local ok=0 pair arm want got
    for pair in $EXPECT_WEIGHTS; do
        arm=${pair%%=*} want=${pair#*=}
        got=$(python3 -c "import sys; from biobench.provenance import weights_sha256; print(weights_sha256(sys.argv[1]))" "$W/ckpt/$arm")
        if [ "${got:0:${#want}}" = "$want" ]; then echo "weights $arm: $got, as expected ($want)"
        else echo "weights $arm: $got, expected $want"; ok=1; fi
    done
    return $ok
}
rc=0
case $STEP in
    pretrain)  # pack, the arms (default: all 3), then check and cka; EXPORT=ARM and THEN_FINETUNE=I/N use the rest
        [ $# -gt 0 ] && export ARMS="$*"
        OUT_DIR=$W/out step pack pretrain || rc=$?
        if [ $rc -eq 0 ] && [ -z "${1:-}" ]; then OUT_DIR=$W/out step check cka || rc=$?; fi
        tar -C "$W" -cJf "$OUT/pretrain.tar.xz" $(cd "$W" && ls -d head-init-*.json pack/pretokenized.json \
            ckpt/*/log.jsonl ckpt/*/pretrain_config.json ckpt/*/.bf16 out 2>/dev/null)
        if [ -n "${EXPECT_WEIGHTS:-}" ] && ! expect_weights; then
            echo "the rebuilt weights are not those of the records: fine-tuning ${FALLBACK_MODELS:-nothing} instead"
            [ -n "${FALLBACK_MODELS:-}" ] && export MODELS=$FALLBACK_MODELS || THEN_FINETUNE=
        fi
        [ -n "${EXPORT:-}" ] && { export_arm "$EXPORT" || rc=$?; }
        if [ $rc -eq 0 ] && [ -n "${THEN_FINETUNE:-}" ] && [ "$(left)" -gt 150 ]; then finetune "$THEN_FINETUNE"; fi ;;
    cka)
        OUT_DIR=$W/out step check cka || rc=$?
        tar -C "$W" -cJf "$OUT/pretrain.tar.xz" out ;;
    finetune)  # EXPORT=ARM first ships that checkpoint back (seconds), then the shard runs for the time left
        [ -n "${EXPORT:-}" ] && { export_arm "$EXPORT" || rc=$?; }
        finetune "${1:?device.sh finetune: I/N expected}" ;;
    export)
        export_arm "${1:?device.sh export: ARM expected}" || rc=$? ;;
    *)
        echo "device.sh: unknown STEP '$STEP'"; exit 2 ;;
esac
echo "device.sh $STEP: rc $rc, $(( $(date +%s) - START )) s wall"
ls -la "$OUT"
exit $rc
