"""The single fine-tune-and-score loop shared by every task kind: train, select on dev, score test.

Two layers:
- `train_and_score(model, card, task_data, seed, protocol)` does the work on data already loaded
  and returns a complete RunRecord (testable without the data loader);
- `run_cell(model, task, seed, out=...)` is what the CLI, the sweep and the demo call: it resolves
  card, data and protocol, skips a cell whose `ok` record already matches (resume), and writes
  exactly one record atomically. A failure during training becomes a `failed` record (a sweep
  goes on); a mistake in the user's input (unknown task, bad flag, missing data) raises at once.

Plain PyTorch on purpose (no Trainer): every choice below is visible and recorded. AdamW without
weight decay on biases and norms, linear warmup then linear decay, gradient clipping, bf16
autocast on CUDA only, dynamic padding, dev scored every epoch with the card's primary metric,
the best dev state kept on CPU, and the test split scored ONCE with that state.

Speed. The loop never waits for the GPU inside an epoch: losses stay on the device until the
epoch ends (the non-finite check then names the first bad step), batches come from pinned
memory with non-blocking copies, and predictions are copied back once all batches have run.
None of this changes a number. Three protocol options (the first two set by `--fast`, the third by
`--compile`) do change numbers and are therefore recorded in the protocol, off by default:

- `length_grouping`: the shuffled training set is cut into mega-batches of 50 batches, each
  sorted by length and cut into batches, and the batch order is shuffled again. Batches stay
  random across the epoch but pad little (same number of batches and steps as the plain path).
- `cuda_graphs`: every batch is padded to a multiple of `GRAPH_PAD` tokens (a few bucket shapes),
  and on CUDA the whole training step (forward, loss, backward, clipping, AdamW) is captured once
  per full-batch shape as a CUDA graph and replayed (`ShapeGraphs`); so is the prediction forward
  (dev, after every epoch, and test). The first batch of a shape runs eagerly (warm-up and a real
  step), the next is captured; a shape that cannot be captured falls back to eager and says so in
  `notes.cuda_graphs`. On CPU only the padding applies.
  Dropout draws a different random stream than the eager path.
- `compile_layers`: on CUDA, each encoder layer is compiled in place (`torch.compile`, inductor, dynamic
  lengths: per layer structure and mode, the first length compiles a graph and later lengths share a
  dynamic one, so a few graphs per process, not one per length). The fused kernels cut the many small
  launches of a short-sequence step; outputs equal the eager layers' to float tolerance. On CPU it does nothing.
"""

from __future__ import annotations

import math
import random
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from biobench import models, provenance
from biobench.attention import use_padding_safe_sdpa
from biobench.cards import SPLITS, TaskCard, get_card
from biobench.data import load_task
from biobench.kinds import get_kind
from biobench.protocols import Protocol, resolve_protocol
from biobench.records import RunRecord, existing_ok, record_path, write_record

# Subsets (protocol.max_train_examples / max_eval_examples) are drawn with a FIXED seed, not the
# run seed: every seed and every model of a protocol then sees the same examples, so differences
# between runs are never differences between test subsets.
SUBSET_SEED = 0
GRAPH_PAD = 16  # cuda_graphs: lengths padded to a multiple of this (one graph per bucket shape)
MEGABATCH = 50  # length_grouping: batches per length-sorted mega-batch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def subsample(split, n: int | None):
    """The first `n` rows of a seeded shuffle (all rows when n is None or not smaller)."""
    if n is None or n >= len(split):
        return split
    return split.shuffle(seed=SUBSET_SEED).select(range(n))


def pick_device(device: str | None) -> torch.device:
    """The requested device, else CUDA when present, else CPU."""
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def make_optimizer(model: torch.nn.Module, protocol: Protocol, *, graphs: bool = False) -> torch.optim.Optimizer:
    """AdamW; matrices decay, vectors (biases, LayerNorm weights) do not.

    The fused kernel (CPU and CUDA) is used where available: on CPU the default per-tensor update
    of a 22M-parameter encoder costs as much as its forward pass. `graphs` (CUDA graphs) keeps the
    learning rate in a device tensor and the update capturable: same arithmetic, no host values.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    device = params[0].device
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": protocol.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    if protocol.head_lr is not None:  # span_ner: parameters outside the pretrained encoder get their own LR
        encoder = {id(p) for p in model.base_model.parameters()}
        groups = [dict(g, params=[p for p in g["params"] if (id(p) in encoder) == inside],
                       lr=protocol.lr if inside else protocol.head_lr) for g in groups for inside in (True, False)]
        groups = [g for g in groups if g["params"]]
    if graphs:
        for group in groups:  # one LR tensor per group: the schedule fills each in place
            group["lr"] = torch.tensor(group.get("lr", protocol.lr), dtype=torch.float32, device=device)
        return torch.optim.AdamW(groups, lr=protocol.lr, fused=True, capturable=True)
    return torch.optim.AdamW(groups, lr=protocol.lr, fused=device.type in ("cpu", "cuda"))


def effective_max_length(requested: int, tokenizer, model_name: str, trust_remote_code: bool) -> int:
    """The card's (or protocol's) length, capped at what the encoder's positions allow."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_name, trust_remote_code=trust_remote_code)
    limits = [getattr(config, "max_position_embeddings", None), tokenizer.model_max_length]
    return min([requested] + [int(x) for x in limits if x and x < 1_000_000])


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Non-blocking on CUDA (the loaders pin their batches); a plain copy elsewhere."""
    return {k: v.to(device, non_blocking=device.type == "cuda") for k, v in batch.items()}


def prediction_batches(enc, collate, batch_size: int, device: torch.device) -> list[tuple[list[int], dict]]:
    """A split's prediction batches: (feature indices, inputs on the host), formed once by length to pad
    little. Dev is predicted after every epoch; collating it again each time cost the host as much as the
    forward itself."""
    order = sorted(range(len(enc.features)), key=lambda i: len(enc.features[i]["input_ids"]))
    batches = []
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        inputs = collate([enc.features[i] for i in idx])
        inputs.pop("labels")
        if device.type == "cuda":
            inputs = {k: v.pin_memory() for k, v in inputs.items()}
        batches.append((idx, inputs))
    return batches


@torch.no_grad()
def predict(model, enc, batches: list[tuple[list[int], dict]], device: torch.device, forward=None) -> list[np.ndarray]:
    """Logits per feature of `enc`, padding removed, from its `prediction_batches`.

    `forward(inputs on the host) -> float logits on the device`: by default the model in bf16 autocast on
    CUDA; under `cuda_graphs`, `graphed_forward`. The logits stay on the device until every batch has been
    queued, so the host never waits for the GPU between batches.
    """
    model.eval()
    if forward is None:
        def forward(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                return model(**to_device(inputs, device)).logits.float()

    outputs: list[np.ndarray | None] = [None] * len(enc.features)
    pending = [(idx, forward(inputs)) for idx, inputs in batches]
    for idx, logits in pending:
        logits = logits.cpu().numpy()
        for i, row in zip(idx, logits):
            outputs[i] = row[: len(enc.features[i]["input_ids"])] if logits.ndim == 3 else row
    return outputs  # type: ignore[return-value]


def length_grouped_batches(lengths: list[int], batch_size: int, generator: torch.Generator) -> list[list[int]]:
    """One epoch of batches (indices) for `length_grouping`: shuffle, cut into mega-batches of
    MEGABATCH batches, sort each by length (longest first), cut into batches, shuffle the batches.
    Only the last mega-batch can end in a short batch, so the count is ceil(n / batch_size)."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    size = batch_size * MEGABATCH
    batches = []
    for start in range(0, len(order), size):
        mega = sorted(order[start:start + size], key=lambda i: -lengths[i])
        batches += [mega[i:i + batch_size] for i in range(0, len(mega), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


class LengthGroupedSampler(torch.utils.data.Sampler):
    """Batch sampler over `length_grouped_batches`; a new grouping every epoch from `generator`."""

    def __init__(self, lengths: list[int], batch_size: int, generator: torch.Generator) -> None:
        self.lengths, self.batch_size, self.generator = lengths, batch_size, generator

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self):
        return iter(length_grouped_batches(self.lengths, self.batch_size, self.generator))


def compile_encoder(net, backend: str = "inductor") -> int:
    """`compile_layers`: every encoder layer compiled in place, dynamic in batch and length (fine-tuning
    batches come in many padded lengths). Returns how many layers were compiled."""
    from biobench.compiling import compile_layers

    return compile_layers(net, backend, dynamic=True)


def train_step(net, kind, optimizer, batch: dict[str, torch.Tensor], max_grad_norm: float, autocast: dict,
               *, keep_grads: bool = False) -> torch.Tensor:
    """One optimizer step on one batch (already on the device); returns the loss, still on the device.

    `keep_grads` zeroes the gradients in place instead of freeing them: a CUDA graph must find
    the same gradient tensors at every replay.
    """
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.autocast(**autocast):
        logits = net(**inputs).logits
    loss = kind.loss(logits, batch["labels"])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=not keep_grads)
    return loss.detach()


class ShapeGraphs:
    """A function of one batch, replayed from one CUDA graph per batch shape (protocol option `cuda_graphs`).

    Used twice: for the training step (`train_step` with kept gradients) and for the prediction
    forward (dev is predicted after every epoch with the same batches, so its shapes recur). Call it
    with a batch on the host (pinned). The first batch of a shape runs eagerly on a side stream
    (warm-up: cuBLAS handles, AdamW state, gradient tensors); the second is captured and every later
    one is a copy into the graph's static inputs plus one replay; the result is returned as a copy,
    so the next replay cannot overwrite it. Short batches (an epoch's or a split's last) and shapes
    whose capture fails run eagerly; `stats` counts it all so that a silent fall back to eager shows in
    the record. For the training step the optimizer must keep its step and LR on the device
    (`make_optimizer(..., graphs=True)`); the LR schedule then updates that tensor in place, outside
    the graph. `pool`: a memory pool shared by the graphs (safe because they never run at once and
    every result is copied out before the next replay); None gives each graph its own.
    """

    def __init__(self, fn, device: torch.device, batch_size: int, *, pool=None) -> None:
        self.fn, self.device, self.batch_size, self.pool = fn, device, batch_size, pool
        self.graphs: dict[tuple, tuple] = {}  # shape -> (graph, static inputs, static output)
        self.seen: set[tuple] = set()
        self.failed: dict[tuple, str] = {}
        self.stats = {"shapes": 0, "captured": 0, "replays": 0, "eager_steps": 0, "failed": 0}

    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        key = tuple((k, tuple(v.shape)) for k, v in sorted(batch.items()))
        if key in self.graphs:
            graph, static, out = self.graphs[key]
            for k, v in batch.items():
                static[k].copy_(v, non_blocking=True)
            graph.replay()
            self.stats["replays"] += 1
            return out.clone()
        full = len(batch["input_ids"]) == self.batch_size
        if full and key in self.seen and key not in self.failed:
            return self._capture(key, batch)
        if full and key not in self.seen:
            self.seen.add(key)
            self.stats["shapes"] += 1
        self.stats["eager_steps"] += 1
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            out = self.fn(to_device(batch, self.device))
        torch.cuda.current_stream(self.device).wait_stream(side)
        return out

    def _capture(self, key: tuple, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        static = {k: torch.empty_like(v, device=self.device) for k, v in batch.items()}
        graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize(self.device)
        try:
            with torch.cuda.graph(graph, pool=self.pool):
                out = self.fn(static)
        except Exception as exc:  # e.g. a model that reads a tensor on the host inside forward
            torch.cuda.synchronize(self.device)
            self.failed[key] = f"{type(exc).__name__}: {exc}"[:300]
            self.stats["failed"] += 1
            self.stats["eager_steps"] += 1
            return self.fn(to_device(batch, self.device))
        self.graphs[key] = (graph, static, out)
        self.stats["captured"] += 1
        return self(batch)  # the capture ran nothing: this batch is the first replay


def graphed_train_step(net, kind, optimizer, max_grad_norm: float, device: torch.device, batch_size: int) -> ShapeGraphs:
    """`train_step` under `ShapeGraphs` (gradients kept in place: a graph must find the same tensors)."""
    autocast = dict(device_type="cuda", dtype=torch.bfloat16, cache_enabled=False)
    return ShapeGraphs(lambda batch: train_step(net, kind, optimizer, batch, max_grad_norm, autocast, keep_grads=True),
                       device, batch_size)


def graphed_forward(net, device: torch.device, batch_size: int) -> ShapeGraphs:
    """The prediction forward (`predict`'s `forward`) under `ShapeGraphs`, its graphs sharing one memory pool."""
    def forward(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
            return net(**inputs).logits.float()

    return ShapeGraphs(forward, device, batch_size, pool=torch.cuda.graph_pool_handle())


def _progress(enabled: bool):
    """A live bar on a terminal; none otherwise (a log file gets `_epoch_line`s instead of redrawn bars)."""
    from rich import progress as rp

    return rp.Progress(rp.TextColumn("{task.description}"), rp.BarColumn(), rp.MofNCompleteColumn(),
                       rp.TimeElapsedColumn(), rp.TimeRemainingColumn(), transient=True,
                       disable=not (enabled and _on_terminal()))


def _on_terminal() -> bool:
    from rich.console import Console

    return Console().is_terminal


def _epoch_line(name: str, seed: int, entry: dict, total_steps: int, metric: str) -> None:
    """One plain line per epoch when stdout is not a terminal (nohup, a log file, a notebook), so a long
    run is never silent there."""
    print(f"{name} seed {seed} · epoch {entry['epoch']} · step {entry['steps']}/{total_steps} · loss "
          f"{entry['train_loss']:.4f} · dev {metric} {entry['dev'][metric]:.2f} · {entry['seconds']:.0f} s", flush=True)


def task_definition(card: TaskCard) -> dict:
    """What a score measures, as the card declares it: the leaderboard compares these fields (not task
    names) with a published row's before ranking the two together. `unit` is the card's when it states
    one (e.g. sentence vs abstract); `split` the card's split rule, else "official"."""
    split = card.data.split
    rule = "official" if not split else ", ".join(f"{k}={split[k]}" for k in sorted(split))
    return {"kind": card.kind, "metric": card.metric, "release": card.data.release, "split": rule,
            "unit": str(getattr(card, "unit", "") or getattr(card.data, "unit", "") or "")}


def new_record(model: str, card: TaskCard, task_data, seed: int, protocol: Protocol) -> RunRecord:
    """A record with the run's identity filled in (what resume compares) and no results yet."""
    return RunRecord(
        model=model, model_sha=models.model_sha(model), task=card.name, language=card.language, kind=card.kind,
        seed=seed, protocol=protocol.to_dict(), metric=card.metric_for(protocol.name), data_sha256=task_data.data_sha256,
        data_release=card.data.release, card_version=card.version, card_hash=card.card_hash,
        versions=provenance.code_versions(), weights_sha256=provenance.weights_sha256(model),
        definition=dict(task_definition(card), metric=card.metric_for(protocol.name)),
    )


def take_predictions(record: RunRecord) -> dict | None:
    """The per-example test predictions `train_and_score` left on the record (not a field: they go to the
    side file, `records.write_record(..., predictions=...)`), removed from it."""
    return record.__dict__.pop("_example_predictions", None)


def train_and_score(model: str, card: TaskCard, task_data, seed: int, protocol: Protocol, *,
                    device: str | None = None, trust_remote_code: bool = False, progress: bool = True) -> RunRecord:
    """Fine-tune `model` on `task_data` and score it; every RunRecord field filled, nothing written."""
    started = time.time()
    record = new_record(model, card, task_data, seed, protocol)
    dev = pick_device(device)
    seed_everything(seed)

    # Data: subsets, then the kind's encoding (labels from the loader, else the card, else train).
    limits = {"train": protocol.max_train_examples, "validation": protocol.max_eval_examples,
              "test": protocol.max_eval_examples}
    splits = {name: subsample(task_data.splits[name], limits[name]) for name in SPLITS}
    tokenizer = models.load_tokenizer(model, trust_remote_code=trust_remote_code, need_fast=card.kind in ("token_ner", "span_ner"))
    max_length = effective_max_length(protocol.max_length or card.max_length, tokenizer, model, trust_remote_code)
    labels = getattr(task_data, "labels", None) or card.labels
    scoring = {"scoring": card.scoring} if card.scoring else {}  # negative class, documents (cards.py)
    kind = get_kind(card.kind)(tokenizer, protocol, max_length, labels, splits["train"], **scoring)
    metric = record.metric  # the card's primary metric under this protocol (card.metric_for)
    encoded = {name: kind.encode(splits[name]) for name in SPLITS}
    graphs = protocol.cuda_graphs and dev.type == "cuda"
    collate = kind.collator(pad_to_multiple_of=GRAPH_PAD if protocol.cuda_graphs else None)
    eval_batches = {name: prediction_batches(encoded[name], collate, protocol.eval_batch_size, dev)
                    for name in ("validation", "test")}
    encoded_at = time.time()

    # Model, optimizer, schedule. The head's random init follows the seed set above.
    net, weights = models.load_model(model, kind.head, trust_remote_code=trust_remote_code, **kind.model_kwargs())
    use_padding_safe_sdpa(net)  # local-attention models: no NaN gradients from padding (biobench/attention.py)
    net.to(dev)
    compiled = None
    if protocol.compile_layers and dev.type == "cuda":
        from biobench.compiling import compiled_graphs

        compiled = {"layers": compile_encoder(net), "graphs_before": compiled_graphs()}
    # setup_s = tokenizer + encoding (encode_s) + model load (model_load_s); keep_s: copies of the best state
    timing = {"setup_s": time.time() - started, "encode_s": encoded_at - started, "model_load_s": time.time() - encoded_at,
              "train_s": 0.0, "dev_s": 0.0, "keep_s": 0.0}
    generator = torch.Generator().manual_seed(seed)
    if protocol.length_grouping:
        lengths = [len(f["input_ids"]) for f in encoded["train"].features]
        batching = dict(batch_sampler=LengthGroupedSampler(lengths, protocol.batch_size, generator))
    else:
        batching = dict(batch_size=protocol.batch_size, shuffle=True, generator=generator)
    loader = DataLoader(encoded["train"].features, collate_fn=collate, pin_memory=dev.type == "cuda", **batching)
    total_steps = len(loader) * protocol.epochs
    if protocol.max_steps:
        total_steps = min(total_steps, protocol.max_steps)
    optimizer = make_optimizer(net, protocol, graphs=graphs)
    from transformers import get_linear_schedule_with_warmup

    scheduler = get_linear_schedule_with_warmup(optimizer, round(protocol.warmup_ratio * total_steps), total_steps)
    autocast = dict(device_type=dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda")
    if graphs:
        step_fn = graphed_train_step(net, kind, optimizer, protocol.max_grad_norm, dev, protocol.batch_size)
        forward = graphed_forward(net, dev, protocol.eval_batch_size)
    else:
        step_fn = lambda batch: train_step(net, kind, optimizer, to_device(batch, dev),  # noqa: E731
                                           protocol.max_grad_norm, autocast)
        forward = None  # predict's eager forward

    # Train; score dev after every epoch; keep the best state (first best on ties). The losses
    # stay on the device: the only host syncs are the progress bar's loss (every 50 steps, when
    # shown) and the end of the epoch.
    best_score, best_state, best_epoch, best_dev = -math.inf, None, 0, {}
    history, step, epoch = [], 0, 0
    # `eval_steps` (span_ner): dev is scored every eval_steps steps instead of every epoch; an "epoch" of the
    # history is then one such interval, its batches taken from passes over the training set that run on.
    from itertools import count, islice

    endless = (batch for _ in count() for batch in loader) if protocol.eval_steps else None
    lines = progress and not _on_terminal()
    with _progress(progress) as bar:
        bar_task = bar.add_task(f"{card.name} seed {seed}", total=total_steps)
        while epoch < protocol.epochs and step < total_steps:
            epoch += 1
            epoch_start, losses = time.time(), []
            net.train()
            for batch in (islice(endless, protocol.eval_steps) if endless else loader):
                losses.append(step_fn(batch))
                scheduler.step()  # a tensor LR (CUDA graphs) is filled in place
                step += 1
                bar.update(bar_task, advance=1)
                if progress and step % 50 == 0:
                    bar.update(bar_task, description=f"{card.name} seed {seed} epoch {epoch} loss {losses[-1].item():.4f}")
                if step >= total_steps:
                    break
            losses = torch.stack(losses).float().cpu().tolist()  # waits for the epoch's last step
            bad = [i for i, value in enumerate(losses) if not math.isfinite(value)]
            if bad:
                raise FloatingPointError(f"non-finite training loss at step {step - len(losses) + bad[0] + 1} (epoch {epoch})")
            dev_start = time.time()
            dev_out = predict(net, encoded["validation"], eval_batches["validation"], dev, forward)
            dev_scores = kind.score(encoded["validation"], dev_out)
            timing["train_s"] += dev_start - epoch_start
            timing["dev_s"] += time.time() - dev_start
            history.append({"epoch": epoch, "steps": step, "train_loss": float(np.mean(losses)),
                            "dev": dev_scores, "seconds": round(time.time() - epoch_start, 2),
                            "train_s": round(dev_start - epoch_start, 2), "dev_s": round(time.time() - dev_start, 2)})
            if lines:
                _epoch_line(card.name, seed, history[-1], total_steps, metric)
            if dev_scores[metric] > best_score:
                best_score, best_epoch, best_dev = dev_scores[metric], epoch, dev_scores
                keep_start = time.time()
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
                timing["keep_s"] += time.time() - keep_start

    # Test, once, with the best dev state.
    test_start = time.time()
    net.load_state_dict(best_state)
    test_out = predict(net, encoded["test"], eval_batches["test"], dev, forward)
    timing["test_predict_s"] = time.time() - test_start
    test_scores = kind.score(encoded["test"], test_out)
    record.__dict__["_example_predictions"] = kind.example_predictions(encoded["test"], test_out)
    timing["test_s"] = time.time() - test_start

    record.notes = dict(task_data.notes or {}, source=task_data.source, max_length=max_length,
                        head=getattr(kind, "head_name", "token" if card.kind == "token_ner" else "sequence"),
                        encoding={name: enc.notes for name, enc in encoded.items()}, weights=weights,
                        attention=net.config._attn_implementation,
                        timing={k: round(v, 2) for k, v in timing.items()})
    if graphs:  # the training step's graphs; the prediction forward's under "predict"
        record.notes["cuda_graphs"] = dict(step_fn.stats, errors=sorted(set(step_fn.failed.values())),
                                           predict=dict(forward.stats, errors=sorted(set(forward.failed.values()))))
    if compiled:  # graphs dynamo compiled in this run (a count that grows with lengths means recompiles)
        record.notes["compile_layers"] = {"layers": compiled["layers"],
                                          "graphs": compiled_graphs() - compiled.pop("graphs_before")}
    if any(len(splits[n]) < len(task_data.splits[n]) for n in SPLITS):
        record.notes["subset"] = {"seed": SUBSET_SEED, "full_sizes": {n: len(task_data.splits[n]) for n in SPLITS}}
    if card.scoring:  # which definition produced the numbers (e.g. the negative class left out)
        record.notes["scoring"] = {k: v for k, v in card.scoring.items() if k != "metric"}
    record.dev, record.test, record.primary = best_dev, test_scores, test_scores[metric]
    record.n_train, record.n_dev, record.n_test = (len(splits[n]) for n in SPLITS)
    record.epochs_run, record.best_epoch, record.history = epoch, best_epoch, history
    record.device = describe_device(dev)
    record.duration_s = round(time.time() - started, 2)
    return record


def run_cell(model: str, task: str | TaskCard, seed: int, *, out: str | Path, protocol: str = "paper",
             overrides: dict | None = None, data_dir: str | Path | None = None, resume: bool = True,
             device: str | None = None, trust_remote_code: bool = False, progress: bool = True) -> RunRecord:
    """One model x task x seed: resume or train, then write its record. See the module docstring."""
    card = task if isinstance(task, TaskCard) else get_card(task)
    resolved = resolve_protocol(protocol, card.language, card.kind, card.protocol, overrides)
    models.check_model(model)
    if pick_device(device).type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{device}' requested but torch sees no CUDA device (torch {torch.__version__})")
    task_data = load_task(card, data_dir)  # None: $BIOBENCH_DATA_DIR, else the card's hub id
    missing = [s for s in SPLITS if s not in task_data.splits or len(task_data.splits[s]) == 0]
    if missing:
        raise ValueError(f"{card.name}: split(s) {', '.join(missing)} missing or empty in {task_data.source}")

    path = record_path(out, model, card.name, seed)
    skeleton = new_record(model, card, task_data, seed, resolved)
    if resume and (done := existing_ok(path, skeleton.identity())) is not None:
        return done
    started = time.time()
    try:
        record = train_and_score(model, card, task_data, seed, resolved, device=device,
                                 trust_remote_code=trust_remote_code, progress=progress)
    except Exception as exc:  # a sweep goes on: the failure is recorded, not raised
        record = skeleton
        record.status, record.error = "failed", _describe(exc)
        record.notes = dict(task_data.notes or {}, source=task_data.source)
        record.duration_s = round(time.time() - started, 2)
        record.device = describe_device(pick_device(device))
    write_record(record, path, predictions=take_predictions(record))
    return record


def _describe(exc: BaseException, tail: int = 8) -> str:
    """`Type: message` plus the last lines of the traceback (enough to find the failing line)."""
    lines = traceback.format_exception(exc)
    return f"{type(exc).__name__}: {exc}\n" + "".join(lines[-tail:])[-3000:]
