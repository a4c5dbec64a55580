#!/usr/bin/env bash
# Pack the data of the benchmarks for a GPU machine without internet: .devdata/data/ (git-ignored) gets
# exactly the files the task cards read from the mirror (found by loading each task through biobench's
# own readers and recording every file they open), plus each task folder's SOURCE.md / LICENSE for
# provenance; each copy is loaded again and must give the same data hash. Then .devdata/data.tar.xz.
# .devdata/data is REPLACED (it then holds the two tasks finetune_speed.py needs, and more).
#
#   benchmarks/pack_devdata.sh [MIRROR (default ../shared/data)] [TASKS (default: suite paper-en)]
#
# There: tar -C .devdata -xJf .devdata/data.tar.xz && python benchmarks/suite_speed.py --data-dir .devdata/data ...
set -euo pipefail
cd "$(dirname "$0")/.."
mirror=${1:-../shared/data}
tasks=${2:-$(${PYTHON:-python} -c "from biobench.cards import suite_tasks; print(','.join(suite_tasks('paper-en')))")}
rm -rf .devdata/data .devdata/data.tar.xz
mkdir -p .devdata/data

${PYTHON:-python} - "$mirror" .devdata/data "$tasks" <<'EOF'
import shutil
import sys
from pathlib import Path

from biobench.cards import get_card
from biobench.data import load_task, source
from biobench.data.load import local_available

mirror, dest, tasks = Path(sys.argv[1]).resolve(), Path(sys.argv[2]), sys.argv[3].split(",")
opened: list[Path] = []
read_bytes = source.SourceFiles.read_bytes


def recording(self, rel):  # every file a reader reads goes through SourceFiles (it hashes them)
    opened.append(self.path(str(rel)))
    return read_bytes(self, rel)


source.SourceFiles.read_bytes = recording
for name in tasks:
    card = get_card(name)
    if not local_available(card, mirror):
        print(f"{name}: no data under {mirror}, skipped")
        continue
    opened.clear()
    sha = load_task(card, mirror).data_sha256
    folder = mirror / card.data.local.dir
    extras = [p for p in folder.iterdir() if p.is_file() and p.name in ("SOURCE.md", "LICENSE", "LICENSE.txt")]
    files = sorted(set(opened))
    for path in files + extras:
        target = dest / path.relative_to(mirror)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    assert load_task(card, dest).data_sha256 == sha, f"{name}: the copy does not hash like the mirror"
    print(f"{name}: {len(files)} files read, copied (data hash checked)")
EOF

tar -C .devdata -cJf .devdata/data.tar.xz data
echo "$(du -sh --apparent-size .devdata/data | cut -f1) in .devdata/data -> $(du -h --apparent-size .devdata/data.tar.xz | cut -f1) .devdata/data.tar.xz"
