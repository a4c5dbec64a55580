"""`--init-missing-head`: the random masked-LM head is a function of `--seed`, not of the process.

The replication of issue 19 compares a detour and its MLM twin that must start from the same weights; MiniLM
has no masked-LM head, so the head is drawn at random when the model loads. torch seeds its default generator
from the OS in every process, so without seeding before the load each run started from another head."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import save_tiny_bert
import biobench.pretrain.loop as loop
from biobench.cli import main

TEXT = ["Mutations in the BRCA1 gene increase the risk of breast and ovarian cancer in carriers .",
        "Aspirin reduced the incidence of myocardial infarction in the treated group of patients .",
        "The expression of interleukin - 2 receptor was measured on activated T lymphocytes ."] * 20


@pytest.fixture
def headless_bert(tmp_path, minilm_path):
    """A tiny BertModel (no masked-LM head, as MiniLM's sentence-transformers export) with MiniLM's tokenizer."""
    folder = Path(save_tiny_bert(tmp_path / "headless", minilm_path, layers=1, max_positions=64))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXT) + "\n")
    return folder, corpus


def test_the_random_head_depends_on_the_seed_only(headless_bert, tmp_path, monkeypatch):
    init, corpus = headless_bert
    heads = []
    load = loop.load_masked_lm

    def recording(name, *, init_missing_head):
        model, missing = load(name, init_missing_head=init_missing_head)
        state = model.state_dict()
        heads.append({k: state[k].detach().clone() for k in missing})
        return model, missing

    monkeypatch.setattr(loop, "load_masked_lm", recording)
    for i, (objective, seed) in enumerate([("mlm", 0), ("detour", 0), ("mlm", 1)]):
        torch.rand(17 + i)  # the global generator in another state, as in another process
        assert main(["pretrain", "--init", str(init), "--corpus", str(corpus), "--objective", objective,
                     "--seed", str(seed), "--init-missing-head", "--tokens", "256", "--seq-len", "32",
                     "--micro-batch", "2", "--decay-fraction", "0.5", "--precision", "fp32", "--max-steps", "0",
                     "--out", str(tmp_path / f"{objective}-{seed}")]) == 0
    twin, detour, other = heads
    dense = "cls.predictions.transform.dense.weight"
    assert dense in twin and twin[dense].std() > 0  # a random matrix, not a constant init
    assert twin.keys() == detour.keys() == other.keys()
    assert all(torch.equal(twin[k], detour[k]) for k in twin)  # same seed: the detour and its twin, same head
    assert not torch.equal(twin[dense], other[dense])  # another seed: another head
