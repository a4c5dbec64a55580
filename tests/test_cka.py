"""Linear CKA (biobench.analysis.cka) on real MiniLM activations, and `biobench analyze cka` end to end.

Text: the 120 real NCBI-disease dev sentences bundled with the demo (biobench/demo_data/en/ncbi_disease/devel.tsv).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from biobench.analysis.cka import layerwise_cka, linear_cka
from biobench.analysis.states import AnalysisError, Encoder, load_encoder, pooled_states
from biobench.cli import main

DEV = Path(__file__).resolve().parents[1] / "biobench" / "demo_data" / "en" / "ncbi_disease" / "devel.tsv"


def _sentences() -> list[str]:
    sentences, words = [], []
    for line in DEV.read_text(encoding="utf-8").splitlines() + [""]:
        if line.strip():
            words.append(line.split("\t")[0])
        elif words:
            sentences.append(" ".join(words))
            words = []
    return sentences


def _hsic_cka(x: np.ndarray, y: np.ndarray) -> float:
    """The textbook definition, written out: HSIC(K, L) = tr(K H L H) / (n - 1)^2 with linear kernels
    K = X X^T, L = Y Y^T and the centring matrix H = I - 11^T / n; CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    k, l = x @ x.T, y @ y.T

    def hsic(a, b):
        return np.trace(a @ h @ b @ h) / (n - 1) ** 2

    return float(hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l)))


@pytest.fixture(scope="module")
def minilm(minilm_path) -> Encoder:
    torch.manual_seed(0)
    return load_encoder(str(minilm_path))


@pytest.fixture(scope="module")
def states(minilm) -> list[np.ndarray]:
    docs = _sentences()
    assert len(docs) == 120
    return pooled_states(minilm, docs, max_length=128, batch_size=16)


@pytest.mark.slow
def test_states_are_real_mean_pooled_layers(minilm, states):
    """7 layers (embeddings + 6 blocks) of width 384, float64; a document's row equals its own forward pass
    averaged over its tokens, whatever it was batched with (padding never counts)."""
    assert len(states) == 7 and all(s.shape == (120, 384) and s.dtype == np.float64 for s in states)
    doc = _sentences()[7]
    batch = minilm.tokenizer([doc], return_tensors="pt", truncation=True, max_length=128)
    with torch.inference_mode():
        hidden = minilm.model(**batch, output_hidden_states=True).hidden_states
    for layer, h in enumerate(hidden):
        np.testing.assert_allclose(states[layer][7], h[0].double().mean(0).numpy(), rtol=0, atol=2e-5)


@pytest.mark.slow
def test_cka_with_itself_is_one(states):
    for x in states:
        assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    # and a different layer is not: the test can fail
    assert linear_cka(states[1], states[6]) < 0.99


@pytest.mark.slow
def test_invariant_to_orthogonal_transform_and_isotropic_scaling(states):
    from scipy.stats import ortho_group

    x, y = states[2], states[5]
    reference = linear_cka(x, y)
    assert 0.05 < reference < 0.999  # a non-trivial value
    q = ortho_group.rvs(dim=x.shape[1], random_state=0)
    assert linear_cka(x @ q, y) == pytest.approx(reference, abs=1e-10)
    assert linear_cka(x, 3.7 * y) == pytest.approx(reference, abs=1e-10)
    assert linear_cka(0.01 * (x @ q), 250.0 * y) == pytest.approx(reference, abs=1e-10)
    # not invariant to an anisotropic scaling: the assertions above can fail
    d = np.random.default_rng(0).uniform(0.1, 10.0, size=x.shape[1])
    assert abs(linear_cka(x * d, y) - reference) > 1e-3


@pytest.mark.slow
def test_agrees_with_the_hsic_formula_on_a_small_case(states):
    for i, j in ((0, 3), (1, 6), (4, 5)):
        x, y = states[i][:30], states[j][:30]
        assert linear_cka(x, y) == pytest.approx(_hsic_cka(x, y), abs=1e-10)
    assert layerwise_cka(states[:2], states[1:3]) == pytest.approx(
        [_hsic_cka(states[0], states[1]), _hsic_cka(states[1], states[2])], abs=1e-10)


def test_cka_input_errors():
    x = np.random.default_rng(0).normal(size=(10, 4))
    with pytest.raises(ValueError, match="same n"):
        linear_cka(x, x[:9])
    with pytest.raises(ValueError, match="constant"):
        linear_cka(x, np.ones((10, 3)))


def test_a_model_with_no_hidden_states_is_refused():
    class NoStates(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(2, 2)

        def forward(self, **_):
            return SimpleNamespace(hidden_states=None)

    def tokenizer(texts, **_):
        return {"input_ids": torch.ones(len(texts), 3, dtype=torch.long),
                "attention_mask": torch.ones(len(texts), 3, dtype=torch.long)}

    class Batch(dict):
        def to(self, _):
            return self

    encoder = Encoder("no-states", NoStates(), lambda texts, **kw: Batch(tokenizer(texts, **kw)), 1, 2)
    with pytest.raises(AnalysisError, match="no-states: the model returns no hidden states"):
        pooled_states(encoder, ["a", "b", "c"], max_length=8)


# --- the command -----------------------------------------------------------------------------------------------

def _perturbed_copy(minilm_path: Path, out: Path, prefixes: tuple[str, ...], scale: float, seed: int) -> Path:
    """MiniLM with Gaussian noise on the weights whose names start with one of `prefixes`."""
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(minilm_path))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(prefixes):
                p.add_(scale * torch.randn(p.shape, generator=generator))
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(str(minilm_path)).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def text_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cka") / "dev.txt"
    path.write_text("\n".join(_sentences()) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_analyze_cka_command(minilm_path, text_file, tmp_path, capsys):
    """B = MiniLM with noise on blocks 4-6 only: the embeddings and blocks 1-3 compute exactly what A computes
    (1 - CKA at rounding level), blocks 4-6 moved. C = noise on the word embeddings: every layer moves."""
    b = _perturbed_copy(minilm_path, tmp_path / "upper", ("encoder.layer.3.", "encoder.layer.4.", "encoder.layer.5."),
                        0.02, seed=1)
    c = _perturbed_copy(minilm_path, tmp_path / "emb", ("embeddings.word_embeddings.",), 0.01, seed=2)
    out = tmp_path / "cka"
    code = main(["analyze", "cka", str(minilm_path), str(b), "--control", str(c), "--text", str(text_file),
                 "--max-length", "128", "--out", str(out), "--device", "cpu"])
    printed = capsys.readouterr().out
    assert code == 0
    result = json.loads((out / "cka.json").read_text(encoding="utf-8"))
    rows = result["layers"]
    assert [r["layer"] for r in rows] == ["embeddings"] + [f"layer {i}" for i in range(1, 7)]
    assert result["documents"] == 120 and result["dtype"] == "float64"
    for r in rows[:4]:
        assert abs(r["one_minus_cka_ab"]) < 1e-12
    for r in rows[4:]:
        assert r["one_minus_cka_ab"] > 1e-4
    for r in rows:
        assert r["one_minus_cka_ac"] > 1e-7
        assert r["ratio"] == pytest.approx(r["one_minus_cka_ab"] / r["one_minus_cka_ac"])
    assert "layer 6" in printed and "A vs C (control)" in printed
    ET.parse(out / "cka.svg")  # well-formed
    assert (out / "cka.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("layers,width,what", [(2, 384, "different depth"), (6, 192, "different width")])
def test_models_of_another_shape_are_refused_in_one_line(minilm_path, text_file, tmp_path, capsys, layers, width,
                                                        what):
    from transformers import AutoTokenizer, BertConfig, BertModel

    config = BertConfig(vocab_size=30522, hidden_size=width, num_hidden_layers=layers, num_attention_heads=12,
                        intermediate_size=4 * width)
    BertModel(config).save_pretrained(tmp_path / "other")
    AutoTokenizer.from_pretrained(str(minilm_path)).save_pretrained(tmp_path / "other")
    capsys.readouterr()
    code = main(["analyze", "cka", str(minilm_path), str(tmp_path / "other"), "--text", str(text_file),
                 "--out", str(tmp_path / "cka"), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and what in err


def test_too_few_documents_are_refused_in_one_line(text_file, tmp_path, capsys):
    short = tmp_path / "short.txt"
    short.write_text("\n".join(text_file.read_text(encoding="utf-8").splitlines()[:10]) + "\n", encoding="utf-8")
    code = main(["analyze", "cka", "a-model", "b-model", "--text", str(short), "--out", str(tmp_path / "cka")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "10 documents, expected at least 100" in err
    code = main(["analyze", "cka", "a", "b", "--text", str(text_file), "--max-docs", "50", "--out", str(tmp_path)])
    assert code == 2 and "50 documents" in capsys.readouterr().err


def test_a_masked_lm_checkpoint_loads_as_its_encoder(minilm_path, tmp_path):
    """`biobench pretrain` writes *ForMaskedLM checkpoints (weights under `bert.`, no pooler): the analysis
    loads their encoder weights, not a random encoder."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    mlm = BertForMaskedLM(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64))
    mlm.save_pretrained(tmp_path / "mlm")
    AutoTokenizer.from_pretrained(str(minilm_path)).save_pretrained(tmp_path / "mlm")
    encoder = load_encoder(str(tmp_path / "mlm"))
    assert (encoder.depth, encoder.width) == (2, 32)
    loaded = dict(encoder.model.named_parameters())
    for name, p in mlm.bert.named_parameters():
        if not name.startswith("pooler."):
            assert torch.equal(loaded[name], p), name
