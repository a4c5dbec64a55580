"""`biobench pretrain` end to end on tiny random-init encoders (MiniLM's tokenizer) and real PubMed text."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from biobench.cli import main

V = 1000  # vocabulary of the test tokenizer


def _save_tiny(out: Path, config, tokenizer_dir: Path) -> Path:
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    torch.manual_seed(0)
    AutoModelForMaskedLM.from_config(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, fixture_data):
    """The first 60 real PubMed abstracts (one per line; the in-repo sample is exactly those)."""
    lines = (fixture_data / "pretrain/en/pubmed_abstracts_1MB/PubMedAbstract_1MB.txt").read_text().splitlines()[:60]
    path = tmp_path_factory.mktemp("corpus") / "pubmed60.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory, corpus):
    """A small deterministic BERT WordPiece vocabulary from the corpus (its characters and most frequent words):
    a 1000-entry output layer keeps CPU steps fast."""
    from collections import Counter

    from transformers import BertTokenizer

    text = corpus.read_text().lower()
    chars = sorted({c for c in text if not c.isspace()})
    words = Counter(re.findall(r"\w+", text))
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = specials + chars + ["##" + c for c in chars]
    pieces += [w for w, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])) if w not in pieces][: V - len(pieces)]
    out = tmp_path_factory.mktemp("tokenizer")
    BertTokenizer(vocab={p: i for i, p in enumerate(pieces)}).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, tokenizer_dir):
    from transformers import BertConfig

    config = BertConfig(vocab_size=V, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=128)  # dropout 0.1: resume must restore it
    return _save_tiny(tmp_path_factory.mktemp("tiny-bert"), config, tokenizer_dir)


def pretrain(init, corpus, out, *extra, objective="mlm", tokens=512, seq_len=32, micro=2, batch=128) -> int:
    return main(["pretrain", "--init", str(init), "--corpus", str(corpus), "--objective", objective,
                 "--tokens", str(tokens), "--seq-len", str(seq_len), "--micro-batch", str(micro),
                 "--batch-tokens", str(batch), "--out", str(out), "--decay-fraction", "0.5", "--precision", "fp32",
                 *map(str, extra)])


def log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def twins(tiny_bert, corpus, tmp_path_factory):
    """Both arms, same seed: 8 phase-1 steps + 8 decay steps of 8 x 64 tokens x 2 accumulation (the decay is
    as long as phase 1 so that the tiny model is still learning in it)."""
    outs = {}
    for objective in ("mlm", "detour"):
        outs[objective] = tmp_path_factory.mktemp(objective)
        assert pretrain(tiny_bert, corpus, outs[objective], "--lr", "3e-3", "--warmup-tokens", "1024", "--decay-fraction", 1,
                        objective=objective, tokens=8 * 1024, seq_len=64, micro=8, batch=1024) == 0
    return outs


def test_twin_arms_read_the_same_token_stream_and_differ_only_in_phase1(twins):
    mlm, detour = log(twins["mlm"]), log(twins["detour"])
    assert len(mlm) == len(detour) == 16
    assert [r["batch_sha1"] for r in mlm] == [r["batch_sha1"] for r in detour], "same sequences, same order"
    assert [r["phase"] for r in mlm] == ["phase1"] * 8 + ["decay"] * 8
    assert {r["objective"] for r in mlm[:8]} == {"mlm"} and {r["objective"] for r in detour[:8]} == {"clm"}
    assert [r["lr"] for r in mlm] == [r["lr"] for r in detour]
    assert [(r["objective"], r["phase_tokens"]) for r in mlm[8:]] == [(r["objective"], r["phase_tokens"]) for r in detour[8:]]
    a, b = (json.loads((twins[k] / "pretrain_config.json").read_text()) for k in ("mlm", "detour"))
    differing = {k for k in a if a[k] != b[k]} - {"out"}
    assert differing == {"objective", "phases"} and a["phases"][1] == b["phases"][1]


def test_loss_goes_down_in_both_phases_of_both_arms(twins):
    for objective, out in twins.items():
        for phase in ("phase1", "decay"):
            losses = [r["loss"] for r in log(out) if r["phase"] == phase]
            half = len(losses) // 2
            first, last = sum(losses[:half]) / half, sum(losses[-half:]) / half
            assert last < first, f"{objective} {phase}: loss {losses}"


def test_output_is_a_bidirectional_hf_checkpoint(twins):
    from transformers import AutoModelForMaskedLM, AutoModelForTokenClassification, AutoTokenizer

    out = twins["detour"]
    assert {"model.safetensors", "config.json", "tokenizer.json", "pretrain_config.json", "log.jsonl"} <= {p.name for p in out.iterdir()}
    model = AutoModelForMaskedLM.from_pretrained(out)
    assert not model.config.is_decoder and not any(getattr(m, "is_causal", False) is True for m in model.modules())
    AutoModelForTokenClassification.from_pretrained(out, num_labels=3)
    AutoTokenizer.from_pretrained(out)
    recorded = json.loads((out / "pretrain_config.json").read_text())
    assert recorded["objective"] == "detour" and recorded["accum_steps"] == 2 and recorded["batch_tokens"] == 1024
    assert recorded["phases"][0]["objective"] == "clm" and recorded["versions"]["torch"] == torch.__version__
    # the checkpoint names the code that made it, as fine-tuning records do (provenance.code_versions)
    from biobench.provenance import source_sha256

    assert recorded["versions"]["biobench_source"] == source_sha256() and recorded["versions"]["accelerate"]


def test_killed_run_resumes_to_the_same_weights(tiny_bert, corpus, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert pretrain(tiny_bert, corpus, whole, objective="detour", tokens=4 * 128) == 0  # 4 + 2 steps
    assert pretrain(tiny_bert, corpus, killed, "--checkpoint-every", 2, "--max-steps", 3, objective="detour", tokens=4 * 128) == 0
    assert torch.load(killed / "checkpoint.pt", weights_only=True)["step"] == 2 and len(log(killed)) == 3
    assert pretrain(tiny_bert, corpus, killed, "--checkpoint-every", 2, "--resume", objective="detour", tokens=4 * 128) == 0
    a, b = load_file(whole / "model.safetensors"), load_file(killed / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "resume must be bitwise exact on CPU"
    assert [r["step"] for r in log(killed)] == list(range(1, 7)) and log(killed) == [
        {**r, "tokens_per_s": s["tokens_per_s"]} for r, s in zip(log(whole), log(killed))]


def test_resume_with_a_different_configuration_is_refused(tiny_bert, corpus, tmp_path, capsys):
    assert pretrain(tiny_bert, corpus, tmp_path, "--max-steps", 1, "--checkpoint-every", 1) == 0
    assert pretrain(tiny_bert, corpus, tmp_path, "--lr", "1e-3", "--resume") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == "biobench pretrain: --resume: configuration differs from the checkpoint's (lr: checkpoint has 0.0002, this run has 0.001)"
    assert pretrain(tiny_bert, corpus, tmp_path) == 2  # an existing checkpoint without --resume
    assert "pass --resume" in capsys.readouterr().err


def test_frozen_layers_do_not_move_and_the_rest_do(tiny_bert, corpus, tmp_path):
    init = load_file(tiny_bert / "model.safetensors")
    args = ("--freeze", "phase1:0-0", "--freeze", "decay:1-1", "--checkpoint-every", 4)
    assert pretrain(tiny_bert, corpus, tmp_path, *args, "--max-steps", 4, tokens=4 * 128) == 0  # end of phase 1
    after1 = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["model"]
    assert pretrain(tiny_bert, corpus, tmp_path, *args, "--resume", tokens=4 * 128) == 0
    final = load_file(tmp_path / "model.safetensors")

    def moved(a, b, part):
        keys = [k for k in init if part in k]
        assert keys
        return [not torch.equal(a[k], b[k]) for k in keys]

    assert not any(moved(init, after1, "layer.0.")), "layer 0 frozen in phase 1"
    assert all(moved(init, after1, "layer.1.")) and all(moved(init, after1, "embeddings.word"))
    assert not any(moved(after1, final, "layer.1.")), "layer 1 frozen in the decay"
    assert all(moved(after1, final, "layer.0."))


def test_modernbert_detour_runs_and_saves(tmp_path, corpus, tokenizer_dir):
    from transformers import AutoModelForMaskedLM, ModernBertConfig

    config = ModernBertConfig(vocab_size=V, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                              intermediate_size=64, local_attention=16, global_attn_every_n_layers=3, pad_token_id=0,
                              cls_token_id=2, sep_token_id=3, bos_token_id=2, eos_token_id=3)
    init = _save_tiny(tmp_path / "tiny-modernbert", config, tokenizer_dir)
    assert pretrain(init, corpus, tmp_path / "out", "--freeze", "phase1:0-1", objective="detour", tokens=2 * 128) == 0
    assert [r["objective"] for r in log(tmp_path / "out")] == ["clm", "clm", "mlm"]
    assert AutoModelForMaskedLM.from_pretrained(tmp_path / "out").config.model_type == "modernbert"


def test_bad_input_stops_before_training_in_one_line(tiny_bert, corpus, tmp_path, minilm_path, tokenizer_dir, capsys):
    from transformers import BertConfig, BertForMaskedLM, FNetConfig, GPT2Config

    (tmp_path / "empty.txt").write_text("")
    no_tok = tmp_path / "no-tokenizer"
    BertForMaskedLM(BertConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                               intermediate_size=64)).save_pretrained(no_tok)
    gpt2 = tmp_path / "gpt2"
    GPT2Config(n_layer=1, n_embd=32, n_head=4).save_pretrained(gpt2)
    shutil.copytree(tokenizer_dir, gpt2, dirs_exist_ok=True)
    fnet = _save_tiny(tmp_path / "fnet", FNetConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2,
                                                     intermediate_size=64), tokenizer_dir)
    cases = [
        ((tiny_bert, tmp_path / "missing.txt"), {}, "--corpus {}: no such file or folder".format(tmp_path / "missing.txt")),
        ((tiny_bert, tmp_path / "empty.txt"), {}, f"--corpus {tmp_path / 'empty.txt'}: file is empty"),
        ((tiny_bert, corpus), {"tokens": 100}, "--tokens 100: smaller than one optimizer step (--batch-tokens 128)"),
        ((minilm_path, corpus), {}, f"--init {minilm_path}: checkpoint has no masked-LM head weights"),
        ((no_tok, corpus), {}, f"--init {no_tok}: no tokenizer files"),
        ((gpt2, corpus), {}, f"--init {gpt2}: architecture 'gpt2' has no masked-LM head class"),
        ((fnet, corpus), {"objective": "detour"}, "--objective detour: fnet attention has no causal switch"),
        ((tiny_bert, corpus, tmp_path / "o", "--freeze", "phase1:0-2"), {}, "--freeze phase1:0-2: outside the model's 2 layers"),
    ]
    for args, kwargs, message in cases:
        args = (*args[:2], args[2] if len(args) > 2 else tmp_path / "o", *args[3:])
        assert pretrain(*args, **kwargs) == 2, message
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("biobench pretrain:")]
        assert len(err) == 1 and err[0].startswith(f"biobench pretrain: {message}"), (message, err)
    assert not (tmp_path / "o").exists(), "nothing written before the checks pass"


@pytest.mark.slow
def test_two_cpu_processes_with_gloo_match_one_process(tmp_path, corpus, tokenizer_dir):
    """DDP on 2 CPU processes: each rank takes every other micro-batch; the result equals accumulation on one."""
    from transformers import BertConfig

    config = BertConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                        max_position_embeddings=128, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    init = _save_tiny(tmp_path / "tiny", config, tokenizer_dir)
    args = ["--init", str(init), "--corpus", str(corpus), "--objective", "detour", "--tokens", "384", "--seq-len", "32",
            "--micro-batch", "2", "--batch-tokens", "128", "--decay-fraction", "0.34", "--precision", "fp32", "--checkpoint-every", "2"]
    assert main(["pretrain", *args, "--out", str(tmp_path / "one")]) == 0
    # accelerate 1.x runs `--cpu --num_processes 2` as one process unless MPI is installed; its torchrun path
    # (--multi_gpu) with ACCELERATE_USE_CPU=1 starts 2 CPU processes on the gloo backend.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                          "--num_machines", "1", "--main_process_port", str(port), "--mixed_precision", "no",
                          "--dynamo_backend", "no", "-m", "biobench", "pretrain", *args, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    recorded = json.loads((tmp_path / "two" / "pretrain_config.json").read_text())
    assert recorded["world_size"] == 2 and recorded["accum_steps"] == 1
    assert [r["phase"] for r in log(tmp_path / "two")] == ["phase1"] * 3 + ["decay"]
    a, b = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_fast_run_matches_the_plain_run(tokenizer_dir, corpus, tmp_path):
    """`--fast` on CPU (per-layer compile; flex attention is CUDA-only): step by step, the detour's losses equal
    the plain run's to float tolerance, from the same batches, and the checkpoint is a plain one. Dropout is off:
    compiled dropout draws other masks than eager dropout."""
    from transformers import BertConfig

    config = BertConfig(vocab_size=V, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                        max_position_embeddings=128, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    init = _save_tiny(tmp_path / "init", config, tokenizer_dir)
    for name, extra in (("plain", ()), ("fast", ("--fast",))):
        assert pretrain(init, corpus, tmp_path / name, "--lr", "3e-3", "--warmup-tokens", "1024", "--decay-fraction", 1,
                        *extra, objective="detour", tokens=4 * 1024, seq_len=64, micro=8, batch=1024) == 0
    plain, quick = log(tmp_path / "plain"), log(tmp_path / "fast")
    assert [r["objective"] for r in quick] == ["clm"] * 4 + ["mlm"] * 4
    assert [r["batch_sha1"] for r in quick] == [r["batch_sha1"] for r in plain]
    assert [r["loss"] for r in quick] == pytest.approx([r["loss"] for r in plain], rel=1e-4)
    assert json.loads((tmp_path / "fast" / "config.json").read_text()).get("_attn_implementation") in (None, "sdpa")


@pytest.mark.parametrize("init_class", ["BertModel", "BertForSequenceClassification"])
def test_the_inits_pooler_is_carried_into_the_output(init_class, tokenizer_dir, corpus, tmp_path):
    """A BERT init with a trained pooler (a sentence-transformers BertModel: keys `pooler.*`; a classifier:
    `bert.pooler.*`) must hand the same pooler to sequence classification after pretraining, or the baseline
    would start fine-tuning from a trained pooler and the pretrained model from a random one."""
    import transformers
    from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer, BertConfig

    config = BertConfig(vocab_size=V, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                        max_position_embeddings=128)
    torch.manual_seed(0)
    init = tmp_path / "init"
    getattr(transformers, init_class)(config).save_pretrained(init)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(init)
    pooler = {k.removeprefix("bert."): v for k, v in load_file(init / "model.safetensors").items() if "pooler" in k}
    assert set(pooler) == {"pooler.dense.weight", "pooler.dense.bias"}

    out = tmp_path / "out"
    assert pretrain(init, corpus, out, "--init-missing-head", objective="detour", tokens=2 * 128) == 0
    saved = load_file(out / "model.safetensors")
    assert all(torch.equal(saved["bert." + k], v) for k, v in pooler.items())
    assert json.loads((out / "pretrain_config.json").read_text())["carried_from_init"] == sorted("bert." + k for k in pooler)
    model, info = AutoModelForSequenceClassification.from_pretrained(out, num_labels=2, output_loading_info=True)
    assert not [k for k in info["missing_keys"] if "pooler" in k]
    assert torch.equal(model.bert.pooler.dense.weight, pooler["pooler.dense.weight"])
    AutoModelForMaskedLM.from_pretrained(out)  # the masked-LM class still loads it (the pooler is ignored there)


def test_a_pretokenized_corpus_gives_the_run_from_text(tiny_bert, corpus, tmp_path):
    """Pack once, then pretrain from the pack: the same batches in the same order, and bitwise the same weights
    on CPU, as the run that tokenizes the text; the pack is refused when it cannot serve the run."""
    pack = tmp_path / "pack"
    assert main(["pretokenize", "--init", str(tiny_bert), "--corpus", str(corpus), "--seq-len", "32",
                 "--sequences", "36", "--out", str(pack)]) == 0
    meta = json.loads((pack / "pretokenized.json").read_text())
    assert meta["sequences"] == 36 and meta["seq_len"] == 32 and meta["seed"] == 0
    text, packed = tmp_path / "text", tmp_path / "packed"
    assert pretrain(tiny_bert, corpus, text, objective="detour", tokens=4 * 128) == 0  # 6 steps x 4 micro x 2 rows
    assert pretrain(tiny_bert, pack, packed, objective="detour", tokens=4 * 128) == 0
    assert [r["batch_sha1"] for r in log(packed)] == [r["batch_sha1"] for r in log(text)]
    a, b = load_file(text / "model.safetensors"), load_file(packed / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((packed / "pretrain_config.json").read_text())["corpus_pack"]["sequences"] == 36


def test_a_pack_that_cannot_serve_the_run_is_refused(tiny_bert, tokenizer_dir, corpus, tmp_path, capsys):
    from transformers import AutoTokenizer, BertConfig

    pack = tmp_path / "pack"
    assert main(["pretokenize", "--init", str(tiny_bert), "--corpus", str(corpus), "--seq-len", "32",
                 "--sequences", "8", "--out", str(pack)]) == 0
    assert pretrain(tiny_bert, pack, tmp_path / "a", objective="detour", tokens=4 * 128) == 2
    assert "holds 8 sequences, this run needs 24 (pretokenize with --sequences 24 or more)" in capsys.readouterr().err
    assert pretrain(tiny_bert, pack, tmp_path / "b", objective="detour", tokens=256, seq_len=64, batch=128) == 2
    assert "packed at --seq-len 32, this run has --seq-len 64" in capsys.readouterr().err
    other = tmp_path / "other-tokenizer"
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    tok.add_tokens(["nephroblastoma"])
    config = BertConfig(vocab_size=V + 1, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=128)
    _save_tiny(other, config, tokenizer_dir)
    tok.save_pretrained(other)
    assert pretrain(other, pack, tmp_path / "c", objective="detour", tokens=256, batch=128) == 2
    assert "differs from --init's" in capsys.readouterr().err
    assert main(["pretokenize", "--init", str(tiny_bert), "--corpus", str(corpus), "--seq-len", "32",
                 "--sequences", "8", "--out", str(pack)]) == 2  # never overwrites a pack
    assert "already holds a pre-tokenized corpus" in capsys.readouterr().err


def test_log_every_logs_the_same_losses_at_fewer_steps(tiny_bert, corpus, tmp_path):
    """Between logging steps the loss stays on the device; the lines written are the every-step run's lines at
    those steps (and at each phase end), rate aside."""
    every, sparse = tmp_path / "every", tmp_path / "sparse"
    assert pretrain(tiny_bert, corpus, every, objective="detour", tokens=4 * 128) == 0  # 4 + 2 steps
    assert pretrain(tiny_bert, corpus, sparse, "--log-every", 3, objective="detour", tokens=4 * 128) == 0
    kept = [r for r in log(every) if r["step"] in (3, 4, 6)]  # step 4 ends phase 1
    assert [r["step"] for r in log(sparse)] == [3, 4, 6]
    assert [{**r, "tokens_per_s": 0} for r in log(sparse)] == [{**r, "tokens_per_s": 0} for r in kept]


# ---- phase 1 is causal in the loop itself (issue 15, item 5) ------------------------------------------------------

def _tiny_config(kind: str):
    """Dropout off, so that a forward inside the loop can be repeated exactly."""
    from transformers import BertConfig, ModernBertConfig

    if kind == "bert":  # SDPA: its causality rests on the `is_causal` flag (transformers passes no mask)
        return BertConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                          max_position_embeddings=128, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    # local window of 16 (|q - k| <= 8) on 32-token sequences: the local layers' mask matters
    return ModernBertConfig(vocab_size=V, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
                            local_attention=16, global_attn_every_n_layers=3, pad_token_id=0, cls_token_id=2,
                            sep_token_id=3, bos_token_id=2, eos_token_id=3)


def _hand_causal_mask(config, length: int, device: torch.device):
    """Built here from its definition, not by transformers or biobench: key k visible to query q iff k <= q
    (and, on ModernBERT's local layers, q - k <= the half window)."""
    q, k = torch.arange(length, device=device)[:, None], torch.arange(length, device=device)[None, :]
    causal = (k <= q)[None, None]
    if config.model_type == "modernbert":
        return {"full_attention": causal, "sliding_attention": causal & (q - k <= config.sliding_window)[None, None]}
    return causal


@pytest.mark.parametrize("kind", ["bert", "modernbert"])
def test_phase1_is_causal_in_the_model_as_the_loop_trains_it(kind, tokenizer_dir, corpus, tmp_path, monkeypatch):
    """A hook on the loop's own model, at every training forward: with the model, its flags and the mask argument
    exactly as the loop set them, changing token t must leave every earlier logit unchanged in phase 1 (and change
    them in the bidirectional decay); and the phase-1 loss the loop backpropagates must equal the next-token
    cross-entropy under a causal mask built by hand. Fails if the loop leaves causal mode off in phase 1."""
    import torch.nn.functional as F

    from biobench.pretrain import loop

    init = _save_tiny(tmp_path / "init", _tiny_config(kind), tokenizer_dir)
    seen, busy, t = [], [False], 20

    def check(module, args, kwargs, output):
        if busy[0] or not module.training:  # the hook's own forwards; the setup's causality probe (eval mode)
            return
        busy[0] = True
        try:
            with torch.no_grad():
                ids, mask = kwargs["input_ids"], kwargs["attention_mask"]
                changed = ids.clone()
                changed[:, t] = (changed[:, t] + 1) % V
                a, b = (module(input_ids=x, attention_mask=mask).logits for x in (ids, changed))
                logits = module(input_ids=ids, attention_mask=_hand_causal_mask(module.config, ids.shape[1], ids.device)).logits
                next_token = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
        finally:
            busy[0] = False
        seen.append({"earlier_unchanged": torch.allclose(a[:, :t], b[:, :t], rtol=1e-4, atol=1e-5),
                     "later_changed": not torch.allclose(a[:, t:], b[:, t:], rtol=1e-4, atol=1e-5),
                     "loss_is_next_token": abs(output.loss.item() - next_token.item()) < 1e-5})

    def load_with_hook(*args, **kwargs):
        model, new_head = load_masked_lm(*args, **kwargs)
        model.register_forward_hook(check, with_kwargs=True)
        return model, new_head

    load_masked_lm = loop.load_masked_lm
    monkeypatch.setattr(loop, "load_masked_lm", load_with_hook)
    assert pretrain(init, corpus, tmp_path / "out", objective="detour", tokens=3 * 128) == 0  # 3 + 2 steps x 2 micro
    objectives = [r["objective"] for r in log(tmp_path / "out") for _ in range(2)]
    assert objectives == ["clm"] * 6 + ["mlm"] * 4 and len(seen) == len(objectives)
    for objective, result in zip(objectives, seen):
        assert result["later_changed"], result
        if objective == "clm":
            assert result["earlier_unchanged"] and result["loss_is_next_token"], result
        else:
            assert not result["earlier_unchanged"], ("the decay must be bidirectional", result)


# ---- the paper's optimizer in the loop (issue 15, item 4) --------------------------------------------------------

@pytest.mark.parametrize("flags, rule", [((), "decoupled"), (("--optimizer", "adamw"), "coupled")])
def test_unused_weights_only_decay_by_the_optimizers_rule(flags, rule, tiny_bert, corpus, tmp_path):
    """Rows 32-127 of BERT's position table never see a 32-token sequence: their gradient is exactly zero, so Adam
    leaves them alone and only the weight decay moves them. After the run each row is its initial value times
    prod over the logged steps of (1 - wd * lr_t / lr_peak) (decoupled, the default: Composer's DecoupledAdamW)
    or (1 - lr_t * wd) (torch's AdamW)."""
    wd, peak = 0.1, 2e-4
    assert pretrain(tiny_bert, corpus, tmp_path, "--weight-decay", wd, *flags, objective="detour", tokens=4 * 128) == 0
    lrs = [r["lr"] for r in log(tmp_path)]
    assert len(lrs) == 6 and max(lrs) == peak
    factor = 1.0
    for lr in lrs:
        factor *= 1 - wd * lr / peak if rule == "decoupled" else 1 - lr * wd
    key = "bert.embeddings.position_embeddings.weight"
    before, after = load_file(tiny_bert / "model.safetensors")[key][32:], load_file(tmp_path / "model.safetensors")[key][32:]
    assert torch.allclose(after.double(), before.double() * factor, rtol=1e-6, atol=0)
    recorded = json.loads((tmp_path / "pretrain_config.json").read_text())["optimizer"]
    assert recorded["name"] == ("decoupled_adamw" if rule == "decoupled" else "adamw") and recorded["weight_decay"] == wd


# ---- checkpoint.pt only when asked for (issue 17) -----------------------------------------------------------------

def test_checkpoint_pt_is_written_only_when_asked_and_resume_still_works(tiny_bert, corpus, tmp_path, capsys):
    plain, kept, killed = tmp_path / "plain", tmp_path / "kept", tmp_path / "killed"
    assert pretrain(tiny_bert, corpus, plain, objective="detour", tokens=4 * 128) == 0  # 4 + 2 steps
    assert (plain / "model.safetensors").exists() and not (plain / "checkpoint.pt").exists()
    assert pretrain(tiny_bert, corpus, plain, objective="detour", tokens=4 * 128) == 2  # never overwrites a model
    assert f"--out {plain}: holds the model of a finished run" in capsys.readouterr().err

    assert pretrain(tiny_bert, corpus, kept, "--keep-checkpoint", objective="detour", tokens=4 * 128) == 0
    assert torch.load(kept / "checkpoint.pt", weights_only=True)["step"] == 6
    assert pretrain(tiny_bert, corpus, kept, "--keep-checkpoint", "--resume", objective="detour", tokens=4 * 128) == 0
    assert len(log(kept)) == 6  # nothing left to do

    # killed after step 3 (checkpoint at step 2), resumed without --checkpoint-every: the checkpoint it resumed
    # from is superseded by the final model and removed
    assert pretrain(tiny_bert, corpus, killed, "--checkpoint-every", 2, "--max-steps", 3, objective="detour", tokens=4 * 128) == 0
    assert torch.load(killed / "checkpoint.pt", weights_only=True)["step"] == 2
    assert pretrain(tiny_bert, corpus, killed, "--resume", objective="detour", tokens=4 * 128) == 0
    assert not (killed / "checkpoint.pt").exists() and [r["step"] for r in log(killed)] == list(range(1, 7))
    weights = [load_file(out / "model.safetensors") for out in (plain, kept, killed)]
    assert all(torch.equal(w[k], weights[0][k]) for w in weights[1:] for k in weights[0]), "bitwise equal on CPU"
