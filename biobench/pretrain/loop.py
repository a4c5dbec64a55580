"""The pretraining loop, top to bottom (the shape of nanoGPT's train.py).

setup (every check that can fail runs here, before the first step) -> optimizer -> resume -> for each phase:
for each optimizer step: set the LR, run `accum_steps` micro-batches (autocast forward, backward, DDP sync on
the last), drop the gradients of frozen layers, clip, step, log, checkpoint -> save the final Hugging Face
checkpoint with its tokenizer, the exact configuration and the log.

The host waits for the GPU only on logging steps (`--log-every`): the loss stays on the device in between, so
the next batch is read and masked while the GPU still works. `--fast` adds the speed paths of `fast.py`.

Determinism: the data stream, the masking (seeded per micro-batch) and the dropout RNG (re-seeded each step
from seed, step and rank) are pure functions of the configuration and the step, so a run stopped after a
checkpoint and resumed ends with the same weights as an uninterrupted one (bitwise on CPU).
Devices and processes come from Hugging Face Accelerate: `accelerate launch -m biobench pretrain ...`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import torch

from biobench.pretrain import fast
from biobench.pretrain.config import PretrainConfig, PretrainError
from biobench.pretrain.corpus import Prefetch, check_readable, corpus_files, micro_batches, text_sequences
from biobench.pretrain.freeze import check_range, frozen_parameters
from biobench.pretrain.model import init_pooler, load_masked_lm, load_tokenizer, names
from biobench.pretrain.objectives import check_causal, clm_labels, lm_loss, mask_generator, mask_tokens, set_causal
from biobench.pretrain.optimizer import build_optimizer, describe
from biobench.pretrain.pretokenized import is_pack, open_pack
from biobench.pretrain.schedule import learning_rate
from biobench.provenance import code_versions

CHECKPOINT = "checkpoint.pt"


def train(cfg: PretrainConfig) -> int:
    from accelerate import Accelerator

    # ---- setup: refuse bad input before any training ----------------------------------------------------------
    out = Path(cfg.out)
    packed = is_pack(cfg.corpus)  # a pre-tokenized corpus (`biobench pretokenize`), else text read on the fly
    if not packed:
        files = corpus_files(cfg.corpus)
        check_readable(files, cfg.text_field)
    accelerator = Accelerator()
    main, rank, device = accelerator.is_main_process, accelerator.process_index, accelerator.device
    cfg = cfg.resolve(accelerator.num_processes, device.type == "cuda" and torch.cuda.is_bf16_supported())
    phases = cfg.phases()
    tokenizer = load_tokenizer(cfg.init)
    pack_meta = None
    if packed:
        needed = sum(p.steps for p in phases) * cfg.accum_steps * cfg.world_size * cfg.micro_batch
        rows, pack_meta = open_pack(cfg.corpus[0], tokenizer, cfg.seq_len, needed)
    # --init-missing-head draws the head from torch's generator, which torch seeds from the OS in every process:
    # seeded here, the detour and its twin start from the same head (tests/test_pretrain_head_seed.py)
    torch.manual_seed(cfg.seed)
    model, new_head = load_masked_lm(cfg.init, init_missing_head=cfg.init_missing_head)
    for phase in phases:
        if phase.freeze:
            check_range(model, phase.name, phase.freeze)
    if cfg.objective == "detour":
        check_causal(model, len(tokenizer))
    speed = fast.enable(model, flex=device.type == "cuda") if cfg.fast else {}  # after the plain-path checks
    checkpoint = None
    if (out / CHECKPOINT).exists():
        if not cfg.resume:
            raise PretrainError(f"--out {out}: holds a checkpoint of an earlier run; pass --resume to continue it or choose another --out")
        checkpoint = torch.load(out / CHECKPOINT, map_location="cpu", weights_only=True)
        difference = PretrainConfig.from_dict(checkpoint["config"]).first_difference(cfg)
        if difference:
            raise PretrainError(f"--resume: configuration differs from the checkpoint's ({difference})")
    elif (out / "pretrain_config.json").exists():  # finished, its checkpoint not kept: never overwrite its model
        raise PretrainError(f"--out {out}: holds the model of a finished run; choose another --out")
    if main:
        out.mkdir(parents=True, exist_ok=True)
        if cfg.resume and checkpoint is None:
            print(f"--resume: no checkpoint in {out}; starting from --init", file=sys.stderr)
        if new_head:
            print(f"warning: --init {cfg.init}: masked-LM head initialised at random ({names(new_head)})", file=sys.stderr)
        if speed:
            print(f"--fast: {speed}", file=sys.stderr)

    # ---- optimizer: AdamW, by default with the paper's decoupled weight decay (optimizer.py), none on biases and norms
    adamw = dict(lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay,
                 fused=True if cfg.fast and device.type == "cuda" else None)
    optimizer = build_optimizer(model, cfg.optimizer, **adamw)
    model, optimizer = accelerator.prepare(model, optimizer)
    raw = accelerator.unwrap_model(model)
    step = 0  # optimizer steps done, over both phases
    if checkpoint is not None:
        _load_state(model, optimizer, checkpoint)
        step = checkpoint["step"]
        if main:
            _truncate_log(out / "log.jsonl", step)
            print(f"resuming from step {step} ({checkpoint['tokens']} tokens)", file=sys.stderr)

    # ---- data: one packed stream for both arms; this rank's share of the global micro-batches -----------------------
    micro_per_step = cfg.accum_steps * cfg.world_size
    if packed:
        sequences = iter(rows)  # the pack's order is the text stream's
    else:
        sequences = text_sequences(files, tokenizer, cfg.seq_len, seed=cfg.seed, shuffle_buffer=cfg.shuffle_buffer,
                                   text_field=cfg.text_field)
    stream = Prefetch(micro_batches(sequences, cfg.micro_batch, start=step * micro_per_step, rank=rank, world=cfg.world_size))
    special_ids = tokenizer.all_special_ids
    vocab = min(len(tokenizer), raw.config.vocab_size)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if cfg.precision == "bf16" else contextlib.nullcontext
    pin = device.type == "cuda"  # pinned host memory: the copy to the GPU does not block the host

    # ---- the phases -------------------------------------------------------------------------------------------------
    log = open(out / "log.jsonl", "a" if checkpoint else "w") if main else None
    progress = _progress(main)
    model.train()
    phase_end = 0
    with progress, stream:
        for phase in phases:
            phase_start, phase_end = phase_end, phase_end + phase.steps
            if step >= phase_end:
                continue  # finished before the resume
            causal = phase.objective == "clm"
            set_causal(raw, causal)
            if hasattr(raw, "sparse_prediction"):  # ModernBERT: head on labelled positions only, when that is fewer
                raw.sparse_prediction = not causal  # (CLM labels all but the last; skipping the gather spares a sync)
            masks = fast.attention_masks(raw, cfg.seq_len, causal, device)  # None: the model builds its own
            frozen = frozen_parameters(raw, phase.freeze)
            task = progress.add_task(f"{phase.name} ({phase.objective})", total=phase.steps, completed=step - phase_start,
                                     tps="-", loss="-")
            first_loss, t_phase, steps_here = None, time.perf_counter(), 0
            t_window, steps_window = t_phase, 0
            while step < phase_end:
                if cfg.max_steps is not None and step >= cfg.max_steps:  # as if killed here: no checkpoint
                    if main:
                        print(f"stopped at step {step} (--max-steps); continue with --resume", file=sys.stderr)
                    return 0
                phase_tokens = (step - phase_start + 1) * cfg.batch_tokens
                lr = learning_rate(phase.name, phase_tokens, phase.tokens, cfg.lr, cfg.warmup_tokens, cfg.final_lr_ratio)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                torch.manual_seed((cfg.seed * 1_000_003 + step) * 1_009 + rank)  # dropout RNG, a function of the step
                loss_sum, digest = torch.zeros((), device=device), hashlib.sha1()
                for micro in range(cfg.accum_steps):
                    index, ids = next(stream)
                    digest.update(ids.numpy().tobytes())
                    if causal:
                        inputs, labels = ids, clm_labels(ids)
                    else:
                        inputs, labels = mask_tokens(ids, phase.mask_rate, mask_generator(cfg.seed, index),
                                                     mask_id=tokenizer.mask_token_id, vocab_size=vocab, special_ids=special_ids)
                    last = micro == cfg.accum_steps - 1
                    if pin:
                        inputs, labels = inputs.pin_memory(), labels.pin_memory()
                    with contextlib.nullcontext() if last else accelerator.no_sync(model):
                        with autocast():
                            loss = lm_loss(model, inputs.to(device, non_blocking=pin), labels.to(device, non_blocking=pin),
                                           causal, masks)
                        accelerator.backward(loss / cfg.accum_steps)
                    loss_sum += loss.detach().float() / cfg.accum_steps
                for p in frozen:
                    p.grad = None
                grad_norm = accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip) if cfg.grad_clip > 0 else None
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                steps_here += 1
                steps_window += 1
                progress.update(task, advance=1)
                if step % cfg.log_every == 0 or step == phase_end:  # the only host sync: otherwise the GPU runs ahead
                    loss_value = accelerator.reduce(loss_sum.reshape(1), "mean").item()
                    first_loss = loss_value if first_loss is None else first_loss
                    now = time.perf_counter()
                    tps = steps_window * cfg.batch_tokens / (now - t_window)  # over the steps since the last log
                    t_window, steps_window = now, 0
                    progress.update(task, tps=f"{tps:,.0f}", loss=f"{loss_value:.3f}")
                    if log:
                        log.write(json.dumps({
                            "phase": phase.name, "objective": phase.objective, "step": step, "phase_step": step - phase_start,
                            "tokens": step * cfg.batch_tokens, "phase_tokens": phase_tokens, "loss": round(loss_value, 6),
                            "lr": lr, "grad_norm": None if grad_norm is None else round(float(grad_norm), 6),
                            "tokens_per_s": round(tps, 1), "batch_sha1": digest.hexdigest()[:16]}) + "\n")
                        log.flush()
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                    _save_checkpoint(accelerator, model, optimizer, cfg, step, out)
            if main and steps_here:
                rate = steps_here * cfg.batch_tokens / (time.perf_counter() - t_phase)
                progress.console.print(f"{phase.name} ({phase.objective}): {phase.steps} steps, {phase.tokens:,} tokens, "
                                       f"loss {first_loss:.3f} -> {loss_value:.3f}, {rate:,.0f} tokens/s")
    set_causal(raw, False)
    fast.disable(raw)

    # ---- output: a standard, bidirectional Hugging Face checkpoint ------------------------------------------------
    keep = cfg.checkpoint_every or cfg.keep_checkpoint  # weights + optimizer state (3x the model) only when asked for
    if keep:
        _save_checkpoint(accelerator, model, optimizer, cfg, step, out)
    state = accelerator.get_state_dict(model)
    if main:
        pooler = init_pooler(cfg.init, raw)  # unchanged by pretraining; task heads load it (see init_pooler)
        raw.save_pretrained(out, state_dict={**state, **pooler})
        tokenizer.save_pretrained(out)
        cfg.save(out / "pretrain_config.json", extra={
            "optimizer": describe(cfg.optimizer, **adamw),
            "initialized_head_weights": new_head, "carried_from_init": sorted(pooler), "corpus_pack": pack_meta,
            "phases": [dataclasses.asdict(p) for p in phases],
            "versions": {**code_versions(), "accelerate": _accelerate_version()}})
        log.close()
        if not keep and (out / CHECKPOINT).exists():  # the one this run resumed from, superseded by the final model
            (out / CHECKPOINT).unlink()
        print(f"saved {out}", file=sys.stderr)
    accelerator.wait_for_everyone()
    return 0


def _progress(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[tps]} tok/s"), TextColumn("loss {task.fields[loss]}"),
                    TimeRemainingColumn(), disable=not enabled)


def _save_checkpoint(accelerator, model, optimizer, cfg: PretrainConfig, step: int, out: Path) -> None:
    """One dict, written atomically: weights, optimizer, position (the RNGs are re-derived from the step)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    model_state, optim_state = get_state_dict(model, optimizer.optimizer,
                                              options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if accelerator.is_main_process:
        tmp = out / (CHECKPOINT + ".tmp")
        torch.save({"model": model_state, "optimizer": optim_state, "step": step, "tokens": step * cfg.batch_tokens,
                    "data_position": step * cfg.accum_steps * cfg.world_size, "config": cfg.to_dict()}, tmp)
        os.replace(tmp, out / CHECKPOINT)
    accelerator.wait_for_everyone()


def _load_state(model, optimizer, checkpoint: dict) -> None:
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions, set_model_state_dict, set_optimizer_state_dict)

    set_model_state_dict(model, checkpoint["model"], options=StateDictOptions(full_state_dict=True))
    # not strict: parameters frozen so far have no optimizer state yet
    set_optimizer_state_dict(model, optimizer.optimizer, checkpoint["optimizer"],
                             options=StateDictOptions(full_state_dict=True, strict=False))


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint (a killed run may have logged a few more steps)."""
    if path.exists():
        kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        path.write_text("".join(line + "\n" for line in kept))


def _accelerate_version() -> str:
    import accelerate

    return accelerate.__version__