"""Protocol presets resolve in the documented order: preset, card overrides, flags."""

import pytest

from biobench.protocols import resolve_protocol


def test_paper_presets_follow_the_paper():
    en_ner = resolve_protocol("paper", "en", "token_ner")
    assert (en_ner.lr, en_ner.batch_size, en_ner.epochs, en_ner.weight_decay) == (5e-5, 16, 20, 0.01)
    assert resolve_protocol("paper", "en", "classification").epochs == 10
    fr_ml = resolve_protocol("paper", "fr", "multilabel")
    assert (fr_ml.lr, fr_ml.batch_size, fr_ml.epochs, fr_ml.warmup_ratio, fr_ml.weighted_bce) == (2e-5, 4, 15, 0.1, True)
    assert resolve_protocol("paper", "fr", "token_ner").max_steps == 4000


def test_override_order():
    card = {"paper": {"epochs": 3, "lr": 1e-5}, "smoke": {"epochs": 2}}
    p = resolve_protocol("paper", "en", "classification", card, {"lr": 3e-5, "batch_size": None})
    assert (p.epochs, p.lr, p.batch_size) == (3, 3e-5, 16)
    s = resolve_protocol("smoke", "en", "classification", card)
    assert (s.name, s.epochs, s.max_train_examples) == ("smoke", 2, 256)


def test_protocol_file(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("name: mine\nlr: 1.0e-4\nepochs: 2\n")
    p = resolve_protocol(str(f), "en", "token_ner")
    assert (p.name, p.lr, p.epochs, p.batch_size) == ("mine", 1e-4, 2, 16)
    f.write_text("learning_rate: 1\n")
    with pytest.raises(ValueError, match="unknown 'learning_rate'"):
        resolve_protocol(str(f), "en", "token_ner")


def test_unknown_preset_and_flag():
    with pytest.raises(ValueError, match="unknown protocol preset 'fast'"):
        resolve_protocol("fast", "en", "token_ner")
    with pytest.raises(ValueError, match="unknown 'epoch'"):
        resolve_protocol("paper", "en", "token_ner", flags={"epoch": 3})


def test_benchmark_presets_are_named_apart_from_the_paper():
    b = resolve_protocol("blurb", "en", "token_ner")
    d = resolve_protocol("drbenchmark", "fr", "similarity", {"drbenchmark": {"epochs": 30}})
    assert (b.name, b.batch_size, b.epochs) == ("blurb", 32, 20)
    assert (d.name, d.lr, d.epochs) == ("drbenchmark", 2e-5, 30)


def test_smoke_is_one_preset_shared_by_the_cli_and_the_demo():
    from biobench.commands.demo import DEMO_PROTOCOL
    from biobench.protocols import SMOKE

    assert DEMO_PROTOCOL == "smoke"  # the demo passes no overrides (tests/test_demo.py checks its records)
    for kind in ("token_ner", "classification", "similarity", "multilabel"):
        p = resolve_protocol("smoke", "en", kind)
        assert {k: getattr(p, k) for k in SMOKE} == SMOKE
    assert p.max_steps and p.epochs * 4 >= p.max_steps  # BIOSSES' 64 pairs (4 batches) still reach max_steps


@pytest.mark.slow
def test_smoke_learns_ncbi_disease_with_minilm(tmp_path, minilm_path):
    """The reason for the preset: a first NER run must not look broken (the old smoke gave F1 0.00)."""
    from biobench.cards import parse_card
    from biobench.commands.demo import DEMO_DATA
    from biobench.finetune import run_cell

    card = parse_card(DEMO_DATA / "cards" / "ncbi_disease_demo.yaml")
    rec = run_cell(str(minilm_path), card, 42, out=tmp_path, protocol="smoke", data_dir=DEMO_DATA, progress=False,
                   device="cpu")
    assert rec.status == "ok" and rec.history[-1]["steps"] == rec.protocol["max_steps"]
    assert rec.primary > 5.0 and rec.dev["seqeval_f1"] > 5.0, (rec.primary, rec.dev)
