"""Fine-tuning speed: biobench's own loop against the plain Hugging Face Trainer recipe, same GPU, same call.

For each task (NCBI-disease: token NER; GAD fold 1: classification) and each encoder (MiniLM-L6, real
weights; ModernBERT-base, random init from `ModernBertConfig()` defaults, built here, no hub), one epoch
at batch 16, LR 5e-5, seed 42, bf16:

- `trainer`: `Trainer` + `AutoModelFor{TokenClassification,SequenceClassification}` +
  `DataCollatorForTokenClassification` / `DataCollatorWithPadding`, `dataloader_num_workers=2`, eval
  batch 16. It trains on biobench's own encoded features (same sub-tokens, first-sub-token labels,
  same windows), and its test predictions are scored by the same biobench scorer.
- `biobench`: `train_and_score` (the path `biobench finetune` takes), paper protocol with epochs 1,
  batch 16, LR 5e-5: the plain loop, no speed options.
- `biobench --fast`: the same with `length_grouping` and `cuda_graphs`.
- `biobench grouping` and `biobench graphs` (ablations, on request): `length_grouping` alone, `cuda_graphs` alone.
- `biobench --fast --compile` (on request, `--variants ...,compile`): `--fast` plus `compile_layers`; its one
  epoch includes the compilation, which a 10-20 epoch run pays once. With `--warm-compile`, an untimed
  `--fast --compile` run on 64 examples comes first (per model), so the timed row sees what every run after
  a sweep worker's first one sees: the compiled layers reused, no compilation inside the epoch.

Train samples/s = training features / training seconds (first steps and graph captures included, dev
scoring excluded); eval samples/s = test features / test prediction seconds (scoring excluded). The
fast variant fails the benchmark if any graph capture failed or if more shapes ran eagerly than the
bucket count allows (a silent fall back to eager steps). A check before the runs compares one
graphed step with one eager step on the same batch (dropout off): loss and weights to bf16 tolerance.

    python benchmarks/finetune_speed.py --data-dir DATA --minilm MINILM_DIR [--out DIR]

Prints ONE table (Markdown) and writes it, with every record, to --out.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

TASKS = {"ncbi_disease": "seqeval_f1", "gad": "micro_f1"}
MODELS = ("minilm", "modernbert")
FLAGS = dict(epochs=1, batch_size=16, lr=5e-5)
SEED = 42
DEVICE = "cuda"  # --device cpu: a dry run of the script itself (no numbers worth keeping)


def build_modernbert(minilm: Path, folder: Path) -> str:
    """ModernBERT-base, random init from the config's defaults, saved with the MiniLM tokenizer
    (its 30,522 ids fit ModernBERT's 50,368 embeddings; no token_type_ids, as ModernBERT's own)."""
    from transformers import ModernBertConfig, ModernBertModel

    folder.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(minilm / name, folder / name)
    config = json.loads((minilm / "tokenizer_config.json").read_text())
    config["model_input_names"] = ["input_ids", "attention_mask"]
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    ModernBertModel(ModernBertConfig()).save_pretrained(folder, safe_serialization=True)
    return str(folder)


def prepared(model: str, card, task_data):
    """biobench's kind and encoded splits (the features both runners train and predict on)."""
    from biobench import models
    from biobench.finetune import effective_max_length
    from biobench.kinds import get_kind
    from biobench.protocols import resolve_protocol

    protocol = resolve_protocol("paper", card.language, card.kind, card.protocol, FLAGS)
    tokenizer = models.load_tokenizer(model, need_fast=card.kind == "token_ner")
    max_length = effective_max_length(card.max_length, tokenizer, model, False)
    kind = get_kind(card.kind)(tokenizer, protocol, max_length, task_data.labels or card.labels, task_data.splits["train"])
    return kind, {name: kind.encode(task_data.splits[name]) for name in ("train", "test")}


def run_trainer(model: str, card, task_data) -> dict:
    from transformers import (DataCollatorForTokenClassification, DataCollatorWithPadding, Trainer,
                              TrainingArguments, set_seed)

    from biobench import models

    kind, enc = prepared(model, card, task_data)
    set_seed(SEED)
    net, _ = models.load_model(model, kind.head, **kind.model_kwargs())
    if card.kind == "token_ner":
        collator = DataCollatorForTokenClassification(kind.tokenizer)
    else:
        collator = DataCollatorWithPadding(kind.tokenizer)
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=16, per_device_eval_batch_size=16,
                                 learning_rate=5e-5, num_train_epochs=1, bf16=DEVICE == "cuda",
                                 use_cpu=DEVICE == "cpu", dataloader_num_workers=2,
                                 seed=SEED, report_to="none", save_strategy="no", eval_strategy="no",
                                 logging_strategy="no", disable_tqdm=True)
        trainer = Trainer(model=net, args=args, train_dataset=enc["train"].features, data_collator=collator)
        train = trainer.train()
        pred = trainer.predict(enc["test"].features)
    logits = pred.predictions
    if card.kind == "token_ner":
        outputs = [row[: len(f["input_ids"])] for row, f in zip(logits, enc["test"].features)]
    else:
        outputs = list(logits)
    scores = kind.score(enc["test"], outputs)
    return {"train_sps": train.metrics["train_samples_per_second"],
            "eval_sps": pred.metrics["test_samples_per_second"],
            "train_s": train.metrics["train_runtime"], "score": scores[card.metric], "scores": scores,
            "n_train": len(enc["train"].features), "n_test": len(enc["test"].features)}


def run_biobench(model: str, card, task_data, **speed) -> dict:
    from biobench.finetune import train_and_score
    from biobench.protocols import resolve_protocol

    protocol = resolve_protocol("paper", card.language, card.kind, card.protocol, dict(FLAGS, **speed))
    rec = train_and_score(model, card, task_data, SEED, protocol, device=DEVICE, progress=False)
    timing = rec.notes["timing"]
    n_train = rec.notes["encoding"]["train"].get("windows", rec.n_train)
    n_test = rec.notes["encoding"]["test"].get("windows", rec.n_test)
    out = {"train_sps": n_train / timing["train_s"], "eval_sps": n_test / timing["test_predict_s"],
           "train_s": timing["train_s"], "score": rec.primary, "scores": rec.test, "n_train": n_train,
           "n_test": n_test, "record": rec.to_dict()}
    graphs = rec.notes.get("cuda_graphs")
    if graphs is not None:
        out["graphs"] = graphs
        if graphs_fell_back(graphs, rec.epochs_run):
            out["error"] = f"cuda graphs fell back to eager steps: {graphs}"
    return out


def graphs_fell_back(graphs: dict | None, epochs: int) -> bool:
    """The guard on `--fast` timings (suite_speed.py uses it too): every full-batch shape runs eagerly once
    and is then captured, plus one short batch per epoch; anything more means steps silently ran eager.
    The prediction forward's graphs (`predict`) must all capture too."""
    predict = (graphs or {}).get("predict") or {}
    return bool(graphs) and bool(graphs["failed"] or graphs["errors"] or graphs["captured"] > graphs["shapes"]
                                 or graphs["eager_steps"] > graphs["shapes"] + epochs
                                 or predict.get("failed") or predict.get("errors"))


def check_graph_step(model: str, card, task_data) -> str:
    """One graphed step against one eager step on the same batch, dropout off, from the same weights."""
    from biobench import finetune as ft
    from biobench import models
    from biobench.protocols import resolve_protocol

    kind, enc = prepared(model, card, task_data)
    protocol = resolve_protocol("paper", card.language, card.kind, card.protocol, FLAGS)
    batch = kind.collator(pad_to_multiple_of=ft.GRAPH_PAD)(enc["train"].features[:16])
    batch = {k: v.pin_memory() for k, v in batch.items()}
    torch.manual_seed(0)
    base, _ = models.load_model(model, kind.head, **kind.model_kwargs())
    base.cuda().eval()
    plain, graphed = copy.deepcopy(base), copy.deepcopy(base)
    autocast = dict(device_type="cuda", dtype=torch.bfloat16)
    opt = ft.make_optimizer(plain, protocol)
    eager = [ft.train_step(plain, kind, opt, ft.to_device(batch, torch.device("cuda")), 1.0, autocast) for _ in range(3)]
    step = ft.graphed_train_step(graphed, kind, ft.make_optimizer(graphed, protocol, graphs=True), 1.0,
                                  torch.device("cuda"), 16)
    replayed = [step(batch) for _ in range(3)]  # eager warm-up, capture + first replay, replay
    torch.cuda.synchronize()
    assert step.stats["captured"] == 1 and step.stats["replays"] == 2, step.stats
    losses = [(float(a), float(b)) for a, b in zip(eager, replayed)]
    rel = max(abs(a - b) / abs(a) for a, b in losses)
    pa, pb = torch.cat([p.flatten() for p in plain.parameters()]), torch.cat([p.flatten() for p in graphed.parameters()])
    drift = float((pa - pb).detach().norm() / pa.detach().norm())
    ok = rel < 2e-2 and drift < 1e-3
    line = f"graphed vs eager step ({card.name}, 3 steps): losses {losses}, max rel diff {rel:.2e}, weight rel diff {drift:.2e}"
    if not ok:
        raise AssertionError("FAILED " + line)
    return "ok: " + line


def first_rows(task_data, n: int):
    """A copy of `task_data` keeping the first `n` rows of each split (`--max-train`, the `--warm-compile` run)."""
    from datasets import DatasetDict

    small = copy.copy(task_data)
    small.splits = DatasetDict({k: v.select(range(min(n, len(v)))) for k, v in task_data.splits.items()})
    return small


def warm_compile(model: str, card, task_data) -> float:
    """The untimed `--warm-compile` run: `--fast --compile` on (at most) 64 examples of each split, which
    compiles the layers for training and for prediction at several lengths. Returns its seconds."""
    started = time.time()
    run_biobench(model, card, first_rows(task_data, 64), length_grouping=True, cuda_graphs=True, compile_layers=True)
    return time.time() - started


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True, help="local mirror laid out like ../shared/data")
    p.add_argument("--minilm", required=True, help="MiniLM-L6 folder (safetensors, bf16 is fine)")
    p.add_argument("--out", default="benchmarks/results/latest", help="where the table and records go")
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--variants", default="trainer,biobench,fast", help="also: grouping, graphs (ablations), compile")
    p.add_argument("--max-train", type=int, help="subsample train/test (a quick check, not a benchmark)")
    p.add_argument("--warm-compile", action="store_true", help="an untimed --fast --compile run per model before "
                   "the timed compile rows (what a sweep worker's later runs see)")
    p.add_argument("--seed", type=int, default=42, help="seed of every run (default 42)")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    global DEVICE, SEED
    DEVICE, SEED = args.device, args.seed
    if DEVICE == "cuda" and not torch.cuda.is_available():
        print("finetune_speed: needs a CUDA GPU", file=sys.stderr)
        return 2
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    import biobench
    from biobench.cards import get_card
    from biobench.data import load_task

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    work = Path(tempfile.mkdtemp())
    paths = {"minilm": args.minilm}
    if "modernbert" in args.models:
        paths["modernbert"] = build_modernbert(Path(args.minilm), work / "modernbert-base-random")
    variants = args.variants.split(",")
    rows, failures, notes = [], [], []
    warmed: set[str] = set()
    for task in args.tasks.split(","):
        card = get_card(task)
        task_data = load_task(card, args.data_dir)
        if args.max_train:
            task_data = first_rows(task_data, args.max_train)
        if task == "gad" and "fast" in variants and DEVICE == "cuda":
            try:
                notes.append(check_graph_step(paths["minilm"], card, task_data))
            except Exception as exc:
                failures.append(f"graph check: {exc}")
                notes.append(f"graph check FAILED: {exc}")
            print(notes[-1], flush=True)
        for name in args.models.split(","):
            runs = [("trainer", lambda: run_trainer(paths[name], card, task_data)),
                    ("biobench", lambda: run_biobench(paths[name], card, task_data)),
                    ("biobench --fast", lambda: run_biobench(paths[name], card, task_data,
                                                             length_grouping=True, cuda_graphs=True)),
                    ("biobench grouping", lambda: run_biobench(paths[name], card, task_data, length_grouping=True)),
                    ("biobench graphs", lambda: run_biobench(paths[name], card, task_data, cuda_graphs=True)),
                    ("biobench --fast --compile", lambda: run_biobench(paths[name], card, task_data, length_grouping=True,
                                                                       cuda_graphs=True, compile_layers=True))]
            keep = {"trainer": "trainer", "biobench": "biobench", "biobench --fast": "fast",
                    "biobench grouping": "grouping", "biobench graphs": "graphs", "biobench --fast --compile": "compile"}
            ref = None
            for label, fn in runs:
                if keep[label] not in variants:
                    continue
                if keep[label] == "compile" and args.warm_compile:
                    if name not in warmed:
                        warmed.add(name)
                        notes.append(f"--warm-compile: untimed --fast --compile run of {name} on 64 examples of {task} "
                                     f"first ({warm_compile(paths[name], card, task_data):.1f} s)")
                        print(notes[-1], flush=True)
                    label += " (warm)"
                gc.collect()
                DEVICE == 'cuda' and torch.cuda.empty_cache()
                DEVICE == 'cuda' and torch.cuda.reset_peak_memory_stats()
                t0 = time.time()
                try:
                    res = fn()
                except Exception as exc:
                    res = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-2000:]}
                res.update(task=task, model=name, runner=label, wall_s=round(time.time() - t0, 1),
                           peak_gib=torch.cuda.max_memory_allocated() / 2**30 if DEVICE == 'cuda' else 0.0)
                if label == "trainer" and "error" not in res:
                    ref = res
                if ref and "error" not in res:
                    res["x_train"] = res["train_sps"] / ref["train_sps"]
                    res["x_eval"] = res["eval_sps"] / ref["eval_sps"]
                    res["d_score"] = res["score"] - ref["score"]
                if "error" in res:
                    failures.append(f"{task} {name} {label}: {res['error']}")
                rows.append(res)
                print(json.dumps({k: v for k, v in res.items() if k not in ("record", "trace", "scores")}, default=str),
                      flush=True)
    shutil.rmtree(work, ignore_errors=True)

    props = torch.cuda.get_device_properties(0) if DEVICE == "cuda" else type("cpu", (), {"name": "cpu", "total_memory": 0})
    head = [f"# biobench fine-tuning speed ({time.strftime('%Y-%m-%d')})", "",
            f"- command: `python benchmarks/finetune_speed.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
            f"- device: {props.name} ({props.total_memory / 2**30:.0f} GiB), {os.cpu_count()} CPU cores, "
            f"CUDA {torch.version.cuda}, driver {_driver()}",
            f"- versions: python {platform.python_version()}, torch {torch.__version__}, transformers "
            f"{transformers.__version__}, biobench {biobench.__version__}",
            f"- setting: 1 epoch, batch 16, LR 5e-5, seed {SEED}, bf16 autocast; ModernBERT-base is random init "
            "(`ModernBertConfig()`), MiniLM-L6 real weights",
            f"- total wall time: {time.time() - started:.0f} s", ""]
    head += [f"- {n}" for n in notes] + [""]
    table = ["| task | model | runner | train samples/s | × Trainer | eval samples/s | × Trainer | test score | Δ vs Trainer | peak GiB | train s |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r and "train_sps" not in r:
            table.append(f"| {r['task']} | {r['model']} | {r['runner']} | FAILED: {r['error'][:120]} ||||||||")
            continue
        flag = " ⚠" if "error" in r else ""
        x_train, x_eval, d_score = (format(r[k], f) if k in r else "-"  # "-": no Trainer run in this call
                                    for k, f in (("x_train", ".2f"), ("x_eval", ".2f"), ("d_score", "+.2f")))
        table.append(f"| {r['task']} | {r['model']} | {r['runner']}{flag} | {r['train_sps']:.0f} | {x_train} | "
                     f"{r['eval_sps']:.0f} | {x_eval} | {r['score']:.2f} | {d_score} | "
                     f"{r['peak_gib']:.2f} | {r['train_s']:.1f} |")
    text = "\n".join(head + table + ([""] + [f"- FAILURE: {f}" for f in failures] if failures else []))
    (out / "finetune_speed.md").write_text(text + "\n")
    (out / "finetune_speed.json").write_text(json.dumps(rows, indent=1, default=str))
    print("\n" + text, flush=True)
    return 1 if failures else 0


def _driver() -> str:
    try:
        import subprocess

        return subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20).stdout.strip() or "?"
    except Exception:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
