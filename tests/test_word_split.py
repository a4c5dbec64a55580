"""Pre-split NER words reach every tokenizer family as running text does (issue 15, item 1).

Real-format tokenizers are trained offline with the `tokenizers` library on real PubMed abstracts
(the in-repo sample of ../shared/data/pretrain/en, tests/fixtures/data/pretrain/en), then loaded
through transformers as the models' own files would be:
- ModernBERT-like: ByteLevel pre-tokenizer without prefix space, BPE, `[CLS] $A [SEP]`, loaded as the
  generic PreTrainedTokenizerFast, with `add_prefix_space=True` passed as the paper's code passes it;
- RoBERTa-like: the same BPE with RobertaProcessing, loaded as RobertaTokenizer (roberta-base's config
  sets no add_prefix_space);
- XLM-R/CamemBERT-like: Metaspace + Unigram, loaded as XLMRobertaTokenizer;
plus WordPiece: the real MiniLM. Words are the 700 real NCBI-disease sentences of the in-repo sample
(tests/fixtures/data/en/NCBI-disease-IOB: the first 400 / 150 / 150 of train / devel / test).

The reference for "as running text" is brute force, independent of the code under test (no offsets):
word k's sub-tokens are the ids that `w(k-1) wk` has beyond `w(k-1)`, and they must add up to the ids
of the whole running text; an anchor word in front gives the first word the form it has after a space
(the rule for the first word).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import Dataset

from biobench.kinds import words as word_split
from biobench.kinds.token_ner import IGNORE, TokenNER
from biobench.models import ModelError
from biobench.protocols import resolve_protocol

N_SENTENCES = 700  # real NCBI-disease sentences (the issue asks for at least 400)
FAMILIES = ("modernbert_like", "roberta_like", "metaspace_unigram", "minilm_wordpiece")


def read_iob(path: Path) -> list[tuple[list[str], list[str]]]:
    sentences, words, tags = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if words:
                sentences.append((words, tags))
                words, tags = [], []
            continue
        word, tag = line.split("\t")
        words.append(word)
        tags.append(tag)
    return sentences


@pytest.fixture(scope="session")
def ncbi(fixture_data) -> list[tuple[list[str], list[str]]]:
    folder = fixture_data / "en" / "NCBI-disease-IOB"
    sentences = [s for name in ("train.tsv", "devel.tsv", "test.tsv") for s in read_iob(folder / name)]
    assert len(sentences) == N_SENTENCES
    return sentences


@pytest.fixture(scope="session")
def abstracts(fixture_data) -> list[str]:
    path = fixture_data / "pretrain" / "en" / "pubmed_abstracts_1MB" / "PubMedAbstract_1MB.txt"
    return path.read_text(encoding="utf-8").splitlines()


def _train(text_lines, pre_tokenizer, model, trainer):
    from tokenizers import Tokenizer

    tok = Tokenizer(model)
    tok.pre_tokenizer = pre_tokenizer
    tok.train_from_iterator(text_lines, trainer)
    return tok


def _save(tok, folder: Path, config: dict) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return str(folder)


@pytest.fixture(scope="session")
def tokenizer_dirs(tmp_path_factory, abstracts) -> dict[str, str]:
    """Folders holding a tokenizer.json + tokenizer_config.json per family, trained once per session."""
    from tokenizers import decoders, models, normalizers, pre_tokenizers, processors, trainers

    lines = abstracts
    root = tmp_path_factory.mktemp("tokenizers")
    bert_specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    bert_config = {"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "mask_token": "[MASK]",
                   "unk_token": "[UNK]"}

    # ModernBERT's published tokenizer.json: NFC, ByteLevel(add_prefix_space=false, trim_offsets, regex), BPE.
    bpe = _train(lines, pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True), models.BPE(),
                 trainers.BpeTrainer(vocab_size=2000, special_tokens=bert_specials, show_progress=False,
                                     initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    bpe.normalizer = normalizers.NFC()
    bpe.decoder = decoders.ByteLevel()
    cls, sep = bpe.token_to_id("[CLS]"), bpe.token_to_id("[SEP]")
    bpe.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                                       special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    dirs = {"modernbert_like": _save(bpe, root / "modernbert_like",
                                     dict(bert_config, tokenizer_class="PreTrainedTokenizerFast", model_max_length=8192))}
    bpe.post_processor = processors.RobertaProcessing(("[SEP]", sep), ("[CLS]", cls), trim_offsets=True,
                                                      add_prefix_space=False)
    dirs["roberta_like"] = _save(bpe, root / "roberta_like",
                                 dict(bert_config, tokenizer_class="RobertaTokenizer", bos_token="[CLS]", eos_token="[SEP]"))

    # XLM-R / CamemBERT: Metaspace (prefix "always") + Unigram.
    uni = _train(lines, pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always"), models.Unigram(),
                 trainers.UnigramTrainer(vocab_size=2000, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                                         unk_token="<unk>", show_progress=False))
    uni.normalizer = normalizers.NFKC()
    uni.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    uni.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                                       special_tokens=[("<s>", 0), ("</s>", 2)])
    dirs["metaspace_unigram"] = _save(uni, root / "metaspace_unigram", {
        "tokenizer_class": "XLMRobertaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "cls_token": "<s>",
        "sep_token": "</s>", "pad_token": "<pad>", "mask_token": "<mask>", "unk_token": "<unk>"})
    return dirs


def load(family: str, tokenizer_dirs, minilm_path):
    from transformers import AutoTokenizer

    if family == "minilm_wordpiece":
        return AutoTokenizer.from_pretrained(minilm_path)
    kwargs = {"add_prefix_space": True} if family == "modernbert_like" else {}  # as the paper's code loads it
    return AutoTokenizer.from_pretrained(tokenizer_dirs[family], **kwargs)


def reference_subtokens(tokenizer, sentences: list[list[str]], anchor: str = "the") -> list[list[list[int]]]:
    """Brute force, per sentence and word: the word's ids in running text, without offsets. Word k's
    ids are those `w(k-1) wk` has beyond `w(k-1)` (the anchor word stands before the first word), and
    together they must be exactly the ids of the whole running text `anchor w0 w1 ...` beyond `anchor`."""
    def ids(texts):
        plain = {"add_special_tokens": False, "return_attention_mask": False, "return_token_type_ids": False}
        return tokenizer(texts, **plain)["input_ids"]

    lefts = [[anchor, *words[:-1]] for words in sentences]
    flat = ids([" ".join([anchor, *words]) for words in sentences])
    pairs = ids([f"{left} {word}" for ls, words in zip(lefts, sentences) for left, word in zip(ls, words)])
    alone = ids([left for ls in lefts for left in ls])
    out, at, skip = [], 0, len(ids([anchor])[0])
    for words, whole in zip(sentences, flat):
        per_word = [pair[len(left):] for pair, left in zip(pairs[at: at + len(words)], alone[at: at + len(words)])]
        at += len(words)
        assert [i for w in per_word for i in w] == whole[skip:]  # they add up to running text
        out.append(per_word)
    return out


def ner_kind(tokenizer, rows, max_length=512):
    protocol = resolve_protocol("paper", "en", "token_ner")
    return TokenNER(tokenizer, protocol, max_length, ["Disease"], Dataset.from_list(rows))


def rows_of(sentences):
    return [{"id": str(i), "group": "g", "tokens": w, "tags": t} for i, (w, t) in enumerate(sentences)]


@pytest.mark.parametrize("family", FAMILIES)
def test_ner_words_reach_the_model_as_in_running_text(family, tokenizer_dirs, minilm_path, ncbi):
    tok = load(family, tokenizer_dirs, minilm_path)
    rows = rows_of(ncbi)
    kind = ner_kind(tok, rows)
    enc = kind.encode(Dataset.from_list(rows))
    assert enc.notes["windows"] == len(rows) == N_SENTENCES  # one window per sentence: features line up
    matched = 0
    for (words, _), feature, want in zip(ncbi, enc.features, reference_subtokens(tok, [w for w, _ in ncbi])):
        ids, labels = feature["input_ids"], feature["labels"]
        assert tok.convert_ids_to_tokens([ids[0], ids[-1]]) == [tok.cls_token, tok.sep_token]
        starts = [1 + sum(map(len, want[:k])) for k in range(len(words))]  # each word's first sub-token
        labelled = [pos for pos, label in enumerate(labels) if label != IGNORE]
        matched += ids[1:-1] == [i for w in want for i in w] and labelled == starts
    assert matched / len(rows) >= 0.99, f"{family}: {matched} of {len(rows)} sentences as in running text"
    assert enc.notes["word_split"]["rule"] == "running-text"
    assert enc.notes["word_split"]["first_word"] == "after-space"


@pytest.mark.parametrize("family", FAMILIES)
def test_the_first_word_gets_its_form_after_a_space(family, tokenizer_dirs, minilm_path):
    tok = load(family, tokenizer_dirs, minilm_path)
    first, second = word_split.split_words(tok, [["breast", "cancer"], ["cancer", "breast"]])
    assert first[0] == second[1] == reference_subtokens(tok, [["breast"]])[0][0]
    if family == "modernbert_like":  # where it matters: at the start of the text, "breast" is cut otherwise
        assert tok.convert_ids_to_tokens(first[0])[0].startswith("Ġ")
        assert tok("breast", add_special_tokens=False)["input_ids"] != first[0]


def test_transformers_alone_cuts_byte_level_words_as_text_starts(tokenizer_dirs, minilm_path, ncbi):
    """Why the module exists: with is_split_into_words, the ModernBERT-like tokenizer (even given
    add_prefix_space=True) gives no sentence its running-text sub-tokens. If a transformers release
    fixes this, this test fails and the docs' explanation should be revisited."""
    tok = load("modernbert_like", tokenizer_dirs, minilm_path)
    sentences = [words for words, _ in ncbi]
    split = tok(sentences, is_split_into_words=True, add_special_tokens=False)["input_ids"]
    want = [[i for w in words for i in w] for words in reference_subtokens(tok, sentences)]
    assert sum(a == b for a, b in zip(split, want)) == 0


def test_wordpiece_features_are_identical_to_is_split_into_words(minilm_path, ncbi, monkeypatch):
    """MiniLM scores cannot move: for WordPiece the running-text rule gives transformers' own
    is_split_into_words encoding to the last id, with windows (max_length 24) and truncation."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(minilm_path)
    sentences = [words for words, _ in ncbi]
    for max_length in (512, 12):
        enc, word_ids = word_split.tokenize_words(tok, sentences, truncation=True, max_length=max_length)
        old = tok(sentences, is_split_into_words=True, truncation=True, max_length=max_length)
        assert dict(enc) == dict(old)
        assert word_ids == [old.word_ids(i) for i in range(len(sentences))]

    def is_split_into_words(tokenizer, chunks, **kwargs):  # the encoding before this change
        old = tokenizer(chunks, is_split_into_words=True, **kwargs)
        return old, [old.word_ids(i) for i in range(len(chunks))]

    rows = rows_of(ncbi)
    new = ner_kind(tok, rows, max_length=24).encode(Dataset.from_list(rows))
    monkeypatch.setattr("biobench.kinds.token_ner.tokenize_words", is_split_into_words)
    before = ner_kind(tok, rows, max_length=24).encode(Dataset.from_list(rows))
    assert new.notes["split_examples"] > 100  # the windows are exercised
    assert new.features == before.features and new.meta == before.meta and new.gold == before.gold


# ---------------------------------------------------------------------------------------------
# Bad input: refused before training, in one line naming the model and the fix


def _slow_tokenizer():
    from transformers import PythonBackend

    class WhitespaceSlow(PythonBackend):  # a real slow tokenizer: transformers' Python base class
        def __init__(self, **kwargs):
            self.vocab = {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "breast": 3, "cancer": 4}
            super().__init__(unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", **kwargs)

        def get_vocab(self):
            return dict(self.vocab)

        @property
        def vocab_size(self):
            return len(self.vocab)

        def _tokenize(self, text, **kwargs):
            return text.split()

        def _convert_token_to_id(self, token):
            return self.vocab.get(token, 0)

        def _convert_id_to_token(self, index):
            return {v: k for k, v in self.vocab.items()}[index]

    return WhitespaceSlow()


def _bpe_without_space_split(tmp_path, abstracts, pre_tokenizer) -> str:
    from tokenizers import models, processors, trainers

    tok = _train(abstracts, pre_tokenizer, models.BPE(unk_token="[UNK]"),
                 trainers.BpeTrainer(vocab_size=1000, special_tokens=["[UNK]", "[CLS]", "[SEP]"], show_progress=False))
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    return _save(tok, tmp_path / "bpe-no-space-split", {"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "[UNK]",
                                                         "cls_token": "[CLS]", "sep_token": "[SEP]"})


def test_a_slow_tokenizer_is_refused():
    rows = rows_of([(["breast", "cancer"], ["B-Disease", "I-Disease"])])
    with pytest.raises(ModelError, match="needs a fast tokenizer.*tokenizer.json") as err:
        ner_kind(_slow_tokenizer(), rows)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("pre", ["none", "punctuation"])
def test_a_pre_tokenizer_that_keeps_words_together_is_refused(pre, tmp_path, abstracts):
    from tokenizers import pre_tokenizers
    from transformers import AutoTokenizer

    folder = _bpe_without_space_split(tmp_path, abstracts, None if pre == "none" else pre_tokenizers.Punctuation())
    tok = AutoTokenizer.from_pretrained(folder)
    rows = rows_of([(["breast", "cancer"], ["B-Disease", "I-Disease"])])
    with pytest.raises(ModelError, match="pre-tokenizer") as err:
        ner_kind(tok, rows)
    message = str(err.value)
    assert message.startswith(folder) and "\n" not in message and "splits text at spaces" in message
    # and the per-sentence check, which every encode runs, refuses such a tokenizer too
    if pre == "punctuation":
        with pytest.raises(ModelError, match="spans two words"):
            word_split.tokenize_words(tok, [["the", "breast", "cancer", "patients", "of", "the", "study"]])


def test_blank_words_are_refused_by_the_module_and_replaced_by_token_ner(minilm_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(minilm_path)
    with pytest.raises(ValueError, match="word 1"):
        word_split.tokenize_words(tok, [["a", " ", "b"]])
    rows = rows_of([(["a", "", " b ", "c"], ["O", "O", "B-Disease", "O"])])
    kind = ner_kind(tok, rows)
    enc = kind.encode(Dataset.from_list(rows))
    assert enc.notes["empty_words"] == 1
    assert tok.convert_ids_to_tokens(enc.features[0]["input_ids"]) == ["[CLS]", "a", "[UNK]", "b", "c", "[SEP]"]


# ---------------------------------------------------------------------------------------------
# Through the fine-tuning loop: the record names the rule; a bad tokenizer stops before the model loads


def _tiny_modernbert(folder: Path, tokenizer_folder: str) -> str:
    """A random-init 2-layer ModernBERT (the paper's architecture) with the given tokenizer, safetensors."""
    import shutil

    import torch
    from transformers import AutoTokenizer, ModernBertConfig, ModernBertModel

    shutil.copytree(tokenizer_folder, folder)
    tok = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    config = ModernBertConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, max_position_embeddings=128, local_attention=16,
                              pad_token_id=tok.pad_token_id, cls_token_id=tok.cls_token_id, sep_token_id=tok.sep_token_id,
                              bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id)
    ModernBertModel(config).save_pretrained(folder)
    return str(folder)


def _ncbi_task(fixture_data):
    from biobench.cards import get_card
    from biobench.data.load import load_task

    card = get_card("ncbi_disease")
    return card, load_task(card, fixture_data)


SMALL = {"epochs": 1, "batch_size": 8, "max_length": 64, "max_train_examples": 24, "max_eval_examples": 8}


def test_a_modernbert_record_names_the_word_split_rule(tokenizer_dirs, fixture_data, tmp_path):
    import biobench.finetune as ft

    model = _tiny_modernbert(tmp_path / "tiny-modernbert", tokenizer_dirs["modernbert_like"])
    card, data = _ncbi_task(fixture_data)
    protocol = resolve_protocol("smoke", "en", "token_ner", flags=SMALL)
    rec = ft.train_and_score(model, card, data, 1, protocol, progress=False)
    expected = {"rule": "running-text", "first_word": "after-space", "pre_tokenizer": "ByteLevel", "model": "BPE"}
    assert all(rec.notes["encoding"][split]["word_split"] == expected for split in ("train", "validation", "test"))


def test_a_bad_tokenizer_is_refused_before_the_model_loads(abstracts, fixture_data, tmp_path, monkeypatch):
    import biobench.finetune as ft
    from tokenizers import pre_tokenizers

    folder = _bpe_without_space_split(tmp_path, abstracts, pre_tokenizers.Punctuation())
    model = _tiny_modernbert(tmp_path / "tiny-modernbert", folder)

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded: the tokenizer should have been refused before")

    monkeypatch.setattr(ft.models, "load_model", never)
    card, data = _ncbi_task(fixture_data)
    protocol = resolve_protocol("smoke", "en", "token_ner", flags=SMALL)
    with pytest.raises(ModelError, match="does not split text at spaces"):
        ft.train_and_score(model, card, data, 1, protocol, progress=False)


def test_finetune_and_run_refuse_a_bad_tokenizer_in_one_line_and_write_no_record(abstracts, fixture_data, tmp_path,
                                                                                  capsys):
    """The refusal is a model error (issue 17: no record for a model error), before any cell of a sweep runs."""
    from tokenizers import pre_tokenizers

    from biobench.cli import main

    folder = _bpe_without_space_split(tmp_path, abstracts, pre_tokenizers.Punctuation())
    model = _tiny_modernbert(tmp_path / "tiny-modernbert", folder)
    out = tmp_path / "runs"
    capsys.readouterr()  # the fixture's own saving output
    common = ["--protocol", "smoke", "--data-dir", str(fixture_data), "--out", str(out)]
    assert main(["finetune", "--model", model, "--task", "ncbi_disease", "--seed", "1", *common]) == 2
    err = capsys.readouterr().err
    assert "does not split text at spaces" in err and len(err.strip().splitlines()) == 1, err
    assert main(["run", "--model", model, "--tasks", "ncbi_disease", "--seeds", "1", *common]) == 2
    err = capsys.readouterr().err
    assert "does not split text at spaces" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists() or not any(out.rglob("*.json"))
