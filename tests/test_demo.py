"""`biobench demo`: its three bundled cards load their real samples and the run ends in a leaderboard.

A tiny random-init model stands in for MiniLM here (the real demo is timed in the closing notes);
what is tested is the wiring: cards, bundled data, runner, records, leaderboard.
"""



from conftest import save_tiny_bert
from biobench.cards import parse_card
from biobench.cli import main
from biobench.commands.demo import DEMO_DATA, DEMO_TASKS
from biobench.data import load_task
from biobench.protocols import resolve_protocol
from biobench.records import find_records, read_record


def test_bundled_samples_load_with_their_documented_sizes():
    sizes = {name: {k: len(v) for k, v in load_task(parse_card(DEMO_DATA / "cards" / f"{name}.yaml"), DEMO_DATA).splits.items()}
             for name in DEMO_TASKS}
    assert sizes == {  # biobench/demo_data/README.md
        "ncbi_disease_demo": {"train": 400, "validation": 120, "test": 200},
        "pubmedqa_demo": {"train": 300, "validation": 100, "test": 200},
        "biosses_demo": {"train": 64, "validation": 16, "test": 20},
    }


def test_demo_runs_end_to_end_and_prints_a_leaderboard(tmp_path, minilm_path, capsys):
    model = save_tiny_bert(tmp_path / "tiny-demo", minilm_path, layers=1)
    out = tmp_path / "records"
    assert main(["demo", "--model", str(model), "--out", str(out)]) == 0
    records = [read_record(p) for p in find_records(out)]
    assert sorted(r.task for r in records) == sorted(DEMO_TASKS) and all(r.status == "ok" for r in records)
    # THE smoke preset, unchanged (one protocol for the demo and `--protocol smoke`): 40 steps per task.
    for r in records:
        assert r.protocol == resolve_protocol("smoke", r.language, r.kind).to_dict()
        assert r.history[-1]["steps"] == 40 and r.n_train == min(256, {"biosses_demo": 64}.get(r.task, 256))
    shown = capsys.readouterr().out
    assert "ncbi_disease_demo" in shown and "biosses_demo" in shown and "Avg" in shown
