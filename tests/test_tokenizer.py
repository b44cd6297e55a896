"""Properties of the character tokenizer, checked against plain Python set/sort/index."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from functional_gpt import tokenizer as tk

docs_lists = st.lists(st.text(max_size=12), max_size=12)


@given(docs_lists)
def test_vocabulary_is_the_sorted_set_of_characters(docs: list[str]) -> None:
    tok = tk.build(docs)
    seen = {c for d in docs for c in d}
    assert list(tok.chars) == sorted(seen)
    assert len(set(tok.chars)) == len(tok.chars)
    assert tok.bos == len(seen)
    assert tok.vocab_size == len(seen) + 1


@given(docs_lists)
def test_build_accepts_any_iterable_and_ignores_document_order(docs: list[str]) -> None:
    assert tk.build(iter(docs)) == tk.build(reversed(docs)) == tk.build(docs)


@given(docs_lists, st.data())
def test_encode_decode_round_trip(docs: list[str], data: st.DataObject) -> None:
    tok = tk.build(docs)
    assume(tok.chars)
    text = data.draw(st.text(alphabet=tok.chars, max_size=30))
    ids = tk.encode(tok, text)
    assert len(ids) == len(text)
    assert all(0 <= i < tok.bos for i in ids)
    assert all(tok.chars[i] == c for i, c in zip(ids, text))
    assert tk.decode(tok, ids) == text


@given(docs_lists)
def test_doc_tokens_frame_each_document_with_bos(docs: list[str]) -> None:
    tok = tk.build(docs)
    for doc in docs:
        ids = tk.doc_tokens(tok, doc)
        assert ids[0] == ids[-1] == tok.bos
        assert tok.bos not in ids[1:-1]
        assert all(0 <= i < tok.vocab_size for i in ids)
        assert tk.decode(tok, ids) == doc


@given(st.text(alphabet="abc", min_size=1, max_size=5), st.text(min_size=1, max_size=5))
def test_unknown_characters_are_named(known: str, extra: str) -> None:
    tok = tk.build([known])
    unknown = set(extra) - set(known)
    assume(unknown)
    with pytest.raises(ValueError) as info:
        tk.encode(tok, known + extra)
    for c in unknown:
        assert repr(c) in str(info.value)


@given(st.integers().filter(lambda i: not 0 <= i <= 3))
def test_decode_rejects_ids_out_of_range(i: int) -> None:
    with pytest.raises(ValueError, match="not in range"):
        tk.decode(tk.Tokenizer("abc"), [0, i])


def test_decode_skips_bos_between_documents() -> None:
    tok = tk.build(["ab", "ba"])
    assert tk.decode(tok, (*tk.doc_tokens(tok, "ab"), *tk.doc_tokens(tok, "ba"))) == "abba"


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="not one string"):
        tk.build("emma")
    with pytest.raises(TypeError, match="must be a str"):
        tk.build(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="must be ints"):
        tk.decode(tk.Tokenizer("ab"), [0, 1.0])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="must be ints"):
        tk.decode(tk.Tokenizer("ab"), [True])
