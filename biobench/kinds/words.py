"""Pre-split words -> sub-tokens, exactly as the words reach the model in running text.

Why not `tokenizer(words, is_split_into_words=True)`: transformers then pre-tokenizes each word as if it
began the text. WordPiece does not care, but a byte-level BPE tokenizer whose pre-tokenizer has no prefix
space (ModernBERT's published tokenizer, loaded as the generic `PreTrainedTokenizerFast`) cuts " breast"
in running text into `Ġbreast` and the pre-split word "breast" into `br` + `east`: every word reaches
the model in a form it rarely saw in pretraining. The paper's code passes `add_prefix_space=True` at
loading, which in the transformers it pins (4.52.4) reached the pre-tokenizer; in transformers 5 it no
longer reaches the generic class that ModernBERT's files name (RoBERTa's class still forwards it, but
roberta-base's config does not set it). Measured with transformers 5.25 on NCBI-disease: 0 of 7,287
sentences as in running text (transformers issue 37883; AnswerDotAI/ModernBERT issue 149: NER scores rose
once words had their space).

The rule (one for every tokenizer family): the words are joined by single spaces into running text
WITH A LEADING SPACE, tokenized once with character offsets, and each sub-token goes to the word its
characters come from. So each word gets exactly the sub-tokens it gets in running text; the first word
gets the form it has after a space (`Ġbreast`, `▁breast`; WordPiece drops the space), like every other
word. Why that form for the first word: (1) it is what the paper's code gives the first word
(`add_prefix_space=True` with `is_split_into_words`), (2) a word's sub-tokens then never depend on where
it sits, so a long sentence's windows, which start at any word, tokenize every word the same way, and
the word counts the windows are planned with hold in every window.

The rule needs a fast tokenizer (offsets) whose pre-tokenizer splits the text at spaces, so that no
sub-token spans two words. `word_split_rule` checks both before training and refuses, in one line, a
tokenizer that fails; `tokenize_words` checks every sentence again.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from biobench.models import ModelError

RULE = "running-text"  # records: notes.encoding.<split>.word_split.rule
FIRST_WORD = "after-space"  # the first word's sub-tokens are those it has after a space in running text

# A probe sentence for the pre-training check: letters, digits, punctuation glued to words, hyphens,
# apostrophes, brackets, a Greek letter and an accent: the shapes biomedical NER words take.
PROBE = ["BRCA1", "-", "associated", "breast", "cancer", "(", "IL-2Rα", ")", "in", "patients'",
         "CD4+", "T-cells", ",", "Crohn's", "disease", "1.5", "mg/kg", "naïve", "."]


@dataclass(frozen=True)
class WordSplit:
    """How a tokenizer's words were split, for the record."""

    pre_tokenizer: str  # the backend pre-tokenizer, e.g. "ByteLevel", "Metaspace", "BertPreTokenizer"
    model: str  # the sub-word model: "BPE", "WordPiece", "Unigram"

    def notes(self) -> dict[str, str]:
        return {"rule": RULE, "first_word": FIRST_WORD, "pre_tokenizer": self.pre_tokenizer, "model": self.model}


def _describe(component: dict[str, Any] | None) -> str:
    if component is None:
        return "none"
    if component.get("type") == "Sequence":
        parts = component.get("pretokenizers") or []
        return "Sequence(" + ", ".join(_describe(p) for p in parts) + ")"
    return str(component.get("type"))


def _model_name(tokenizer) -> str:
    return str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)


def word_split_rule(tokenizer) -> WordSplit:
    """Check, before training, that pre-split words can reach this tokenizer as running text does.

    Refused (ModelError, one line naming the model and the fix): a slow tokenizer (no character
    offsets); a tokenizer without a pre-tokenizer, or one whose pre-tokenizer does not split the probe
    sentence at its spaces (a sub-token could then span two words); one for which the rule does not
    reproduce, on the probe, each word's sub-tokens in running text (computed independently, by
    tokenizing growing prefixes of the sentence).
    """
    name = _model_name(tokenizer)
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"{name}: token_ner needs a fast tokenizer (character offsets map sub-tokens to words), "
                         f"but {type(tokenizer).__name__} is slow; add the model's tokenizer.json "
                         "(use a fast tokenizer)")
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    model_type = str((state.get("model") or {}).get("type"))
    split = WordSplit(pre_tokenizer=_describe(state.get("pre_tokenizer")), model=model_type)
    fix = ("use a tokenizer whose pre-tokenizer splits text at spaces (BertPreTokenizer, Whitespace, ByteLevel with "
           "use_regex, Metaspace with split), i.e. add one to its tokenizer.json")
    pre = tokenizer.backend_tokenizer.pre_tokenizer
    if pre is None:
        raise ModelError(f"{name}: its tokenizer has no pre-tokenizer, so a sub-token may span two words; {fix}")
    text, starts = _running_text(PROBE)
    pieces = [span for _, span in pre.pre_tokenize_str(text)]
    if any(_straddles(starts, s, e) for s, e in pieces):
        raise ModelError(f"{name}: its pre-tokenizer ({split.pre_tokenizer}) does not split text at spaces, "
                         f"so a sub-token may span two words; {fix}")
    got = split_words(tokenizer, [PROBE])[0]
    want = running_text_subtokens(tokenizer, PROBE)
    if got != want:
        bad = next(i for i, (g, w) in enumerate(zip(got, want)) if g != w)
        raise ModelError(f"{name}: word {PROBE[bad]!r} gets {got[bad]} by offsets but {want[bad]} in running text "
                         f"(pre-tokenizer {split.pre_tokenizer}); {fix}")
    return split


def running_text_subtokens(tokenizer, words: Sequence[str], anchor: str = "the") -> list[list[int]]:
    """Each word's sub-token ids in running text, by brute force (no offsets): word k's sub-tokens are
    the ids that `anchor w0 ... wk` has beyond `anchor w0 ... w(k-1)`. The anchor word in front gives
    the first word the form it has after a space. Quadratic in the sentence length: for checks only."""
    prefixes = [" ".join([anchor, *words[:k]]) for k in range(len(words) + 1)]
    ids = tokenizer(prefixes, add_special_tokens=False)["input_ids"]
    out = []
    for k in range(len(words)):
        if ids[k + 1][: len(ids[k])] != ids[k]:  # the prefix's tokens changed: words are not separable
            raise ModelError(f"{_model_name(tokenizer)}: adding {words[k]!r} changes the sub-tokens before it")
        out.append(ids[k + 1][len(ids[k]):])
    return out


def _running_text(words: Sequence[str]) -> tuple[str, list[int]]:
    """' w0 w1 ...' and, per word, where its region starts: the space before it (so a sub-token that
    carries the space, `Ġx` or `▁x` with untrimmed offsets, still falls in its word)."""
    starts, pos = [], 0
    for w in words:
        starts.append(pos)
        pos += 1 + len(w)
    return " " + " ".join(words), starts


def _word_at(starts: list[int], pos: int) -> int:
    return bisect.bisect_right(starts, pos) - 1


def _straddles(starts: list[int], s: int, e: int) -> bool:
    """True when the characters [s, e) reach into two words' regions."""
    return e > s and _word_at(starts, s) != _word_at(starts, e - 1)


def tokenize_words(tokenizer, sentences: Sequence[Sequence[str]], **kwargs) -> tuple[Any, list[list[int | None]]]:
    """Tokenize pre-split sentences as running text (see the module docstring).

    Returns the tokenizer's BatchEncoding (special tokens, truncation etc. as `kwargs` ask; no offsets
    in it) and, per sentence, the word index of each token (None for special tokens), as
    `BatchEncoding.word_ids` gives them with `is_split_into_words=True`. Words must be non-blank and
    carry no surrounding whitespace: the caller replaces blank words first.
    """
    texts, regions = [], []
    for i, words in enumerate(sentences):
        for w, word in enumerate(words):
            if not word or word != word.strip():
                raise ValueError(f"tokenize_words: sentence {i}, word {w}: {word!r} is blank or has surrounding spaces")
        text, starts = _running_text(words)
        texts.append(text)
        regions.append(starts)
    enc = tokenizer(texts, return_offsets_mapping=True, **kwargs)
    enc.pop("offset_mapping")
    word_ids = []
    for i, (encoding, starts) in enumerate(zip(enc.encodings, regions)):
        ids: list[int | None] = []
        for seq, (s, e) in zip(encoding.sequence_ids, encoding.offsets):
            if seq is None:  # [CLS], [SEP], <s>, </s>: added by the post-processor
                ids.append(None)
                continue
            if _straddles(starts, s, e):
                raise ModelError(f"{_model_name(tokenizer)}: sentence {i}: sub-token {texts[i][s:e]!r} spans two words; "
                                 "use a tokenizer whose pre-tokenizer splits text at spaces")
            ids.append(_word_at(starts, e - 1 if e > s else s))
        word_ids.append(ids)
    return enc, word_ids


def split_words(tokenizer, sentences: Sequence[Sequence[str]]) -> list[list[list[int]]]:
    """Per sentence, per word, the sub-token ids the word gets in running text (first word: after a
    space); no special tokens."""
    enc, word_ids = tokenize_words(tokenizer, sentences, add_special_tokens=False)
    out = []
    for i, words in enumerate(sentences):
        per_word: list[list[int]] = [[] for _ in words]
        for tok, w in zip(enc["input_ids"][i], word_ids[i]):
            if w is not None:
                per_word[w].append(tok)
        out.append(per_word)
    return out



def check_models_for_word_split(models: Sequence[str], *, trust_remote_code: bool = False) -> None:
    """Before a `token_ner` run or sweep writes anything: refuse, in one line, a model whose tokenizer the
    running-text rule cannot serve (`word_split_rule`), so no failed record stands for a model error."""
    from biobench.models import load_tokenizer

    for model in models:
        word_split_rule(load_tokenizer(model, trust_remote_code=trust_remote_code, need_fast=True))
