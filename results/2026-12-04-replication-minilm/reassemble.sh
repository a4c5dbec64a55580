#!/usr/bin/env bash
# Here: rebuild a checkpoint exported by `device.sh export ARM` (<=15 MiB chunks) as .devdata/ckpt/ARM, checked
# against its sha256, so that a later GPU lease can carry it (about 46 MB: carry it with .devdata/data.tar.xz,
# .devdata/repl.tar.xz and .whl, not with .devdata/minilm: one checkpoint per lease fits the 64 MiB). There,
# `MODELS=MiniLM-ARM device.sh finetune I/N` fine-tunes it; its records name the same weights as in the first lease.
#
#   results/2026-12-04-replication-minilm/reassemble.sh FILES_AT ARM
set -euo pipefail
FROM=${1:?reassemble.sh: FILES_AT expected}; ARM=${2:?reassemble.sh: ARM expected (twin-s0, detour-s0, twin-s1)}
dst=.devdata/ckpt/$ARM
rm -rf "$dst" && mkdir -p "$dst"
tar -C "$dst" -xJf "$FROM/$ARM.files.tar.xz"
cat "$FROM/$ARM".safetensors.part* > "$dst/model.safetensors"
(cd "$dst" && sha256sum -c --quiet -) < "$FROM/$ARM.sha256"
echo "$dst: $(du -sh "$dst" | cut -f1), model.safetensors sha256 checked"
