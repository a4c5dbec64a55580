#!/usr/bin/env bash
# Here: file what a device.sh call brought back (its files_at folder) into this results folder.
#   records-IofN.tar.xz -> records/ (the state of the sweep: commit them as they come)
#   pretrain.tar.xz     -> pretrain/ (log.jsonl, pretrain_config.json, .bf16 of each arm; head-init-*.json; pack meta)
#                          and its out/cka.txt, out/cka/ -> cka.txt, cka/ (cka.json, cka.svg, cka.png)
#   ARM.*               -> left where they are: reassemble.sh FILES_AT ARM rebuilds the checkpoint
#   *.log               -> logs/ (appended when a log of that name exists: one step can take several calls)
#
#   results/2026-12-04-replication-minilm/collect.sh FILES_AT
set -euo pipefail
HERE=results/2026-12-04-replication-minilm
[ -f "$HERE/make.sh" ] || { echo "collect.sh: run from the repository root" >&2; exit 2; }
FROM=${1:?collect.sh: FILES_AT expected}
mkdir -p "$HERE/records" "$HERE/logs"
for f in "$FROM"/records-*.tar.xz; do
    [ -f "$f" ] || continue
    tar -C "$HERE/records" -xJf "$f"
    echo "$(basename "$f"): $(tar -tJf "$f" | grep -c '\.json$') record files -> $HERE/records"
done
if [ -f "$FROM/pretrain.tar.xz" ]; then
    mkdir -p "$HERE/pretrain" && tar -C "$HERE/pretrain" -xJf "$FROM/pretrain.tar.xz" && echo "pretrain.tar.xz -> $HERE/pretrain"
    if [ -d "$HERE/pretrain/out" ]; then  # the check and cka output travel inside pretrain.tar.xz (device.sh)
        [ -f "$HERE/pretrain/out/cka.txt" ] && mv "$HERE/pretrain/out/cka.txt" "$HERE/cka.txt"
        [ -d "$HERE/pretrain/out/cka" ] && mkdir -p "$HERE/cka" && mv "$HERE"/pretrain/out/cka/* "$HERE/cka/" && echo "cka -> $HERE/cka"
        rm -rf "$HERE/pretrain/out"
    fi
fi
[ -f "$FROM/cka.txt" ] && cp "$FROM/cka.txt" "$HERE/cka.txt"
[ -d "$FROM/cka" ] && mkdir -p "$HERE/cka" && cp "$FROM"/cka/* "$HERE/cka/" && echo "cka -> $HERE/cka"
for f in "$FROM"/*.log; do
    [ -f "$f" ] && { { echo "==== $(date -u +%FT%TZ) $(basename "$f")"; cat "$f"; } >> "$HERE/logs/$(basename "$f")"; }
done
true
