"""A character-level tokenizer, as in microgpt.py: one id per distinct character, plus BOS.

The vocabulary is the sorted set of characters in the documents; character
``chars[i]`` has id ``i`` and the extra id ``len(chars)`` is BOS, the token
that starts and ends every document.

>>> tok = build(["emma", "ava"])
>>> tok
Tokenizer(chars='aemv')
>>> tok.bos, tok.vocab_size
(4, 5)
>>> doc_tokens(tok, "ava")
(4, 0, 3, 0, 4)
>>> decode(tok, doc_tokens(tok, "ava"))
'ava'
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["Tokenizer", "build", "encode", "decode", "doc_tokens", "unprintable_chars"]


class Tokenizer(NamedTuple):
    """A vocabulary: ``chars`` holds the distinct characters in sorted order.

    >>> tok = Tokenizer("abc")
    >>> tok.bos, tok.vocab_size
    (3, 4)
    """

    chars: str

    @property
    def bos(self) -> int:
        """The id of BOS, the document delimiter: one past the last character id.

        >>> Tokenizer("xyz").bos
        3
        """
        return len(self.chars)

    @property
    def vocab_size(self) -> int:
        """The number of ids: every character plus BOS.

        >>> Tokenizer("xyz").vocab_size
        4
        """
        return len(self.chars) + 1


def build(docs: Iterable[str]) -> Tokenizer:
    """Return the tokenizer whose vocabulary is the sorted set of characters in ``docs``.

    >>> build(["bob", "abe"]).chars
    'abeo'
    >>> build([]).vocab_size       # BOS only
    1
    >>> build("abc")
    Traceback (most recent call last):
    ...
    TypeError: build: docs must be an iterable of strings, not one string
    """
    if isinstance(docs, str):
        raise TypeError("build: docs must be an iterable of strings, not one string")
    docs = tuple(docs)
    bad = next((d for d in docs if not isinstance(d, str)), None)
    if bad is not None:
        raise TypeError(f"build: every document must be a str, got {type(bad).__name__}")
    return Tokenizer("".join(sorted(set("".join(docs)))))


def encode(tok: Tokenizer, text: str) -> tuple[int, ...]:
    """Return the ids of the characters of ``text`` (no BOS added).

    >>> encode(Tokenizer("abc"), "cab")
    (2, 0, 1)
    >>> encode(Tokenizer("abc"), "cat!")
    Traceback (most recent call last):
    ...
    ValueError: encode: characters not in the vocabulary: '!', 't'
    """
    find = tok.chars.find
    ids = tuple(find(c) for c in text)
    if -1 in ids:
        unknown = sorted({c for c, i in zip(text, ids) if i == -1})
        raise ValueError(
            "encode: characters not in the vocabulary: " + ", ".join(map(repr, unknown))
        )
    return ids


def decode(tok: Tokenizer, ids: Iterable[int]) -> str:
    """Return the text spelled by ``ids``; BOS ids are delimiters and are skipped.

    Skipping BOS makes ``decode(tok, doc_tokens(tok, doc)) == doc``. Decoding a
    sampled sequence that contains several documents therefore joins them: cut
    it at the first BOS beforehand if that matters. Any id outside
    ``range(tok.vocab_size)`` is an error.

    >>> tok = Tokenizer("abc")
    >>> decode(tok, (3, 2, 0, 1, 3))
    'cab'
    >>> decode(tok, [0, 7])
    Traceback (most recent call last):
    ...
    ValueError: decode: id 7 is not in range(4)
    """
    chars, bos = tok.chars, tok.bos
    out = []  # local transient: characters collected, joined on return
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, int):
            raise TypeError(f"decode: ids must be ints, got {type(i).__name__}")
        if not 0 <= i <= bos:
            raise ValueError(f"decode: id {i} is not in range({bos + 1})")
        if i != bos:
            out.append(chars[i])
    return "".join(out)


def doc_tokens(tok: Tokenizer, doc: str) -> tuple[int, ...]:
    """Return ``(BOS, *encode(tok, doc), BOS)``: a document as the model trains on it.

    >>> doc_tokens(Tokenizer("ab"), "ba")
    (2, 1, 0, 2)
    """
    return (tok.bos, *encode(tok, doc), tok.bos)


def unprintable_chars(text: str) -> tuple[str, ...]:
    """Return the distinct characters of ``text`` a vocabulary may not hold, in sorted order.

    A vocabulary holds printable characters only (``str.isprintable``: a space
    is one, a newline, tab, escape or line separator is not), so that every
    name the model spells prints as one line and cannot move the cursor.
    Reading a data file or a checkpoint refuses any other character.

    >>> unprintable_chars("anne marie")
    ()
    >>> unprintable_chars("a\\tb\\nc\\x1b")
    ('\\t', '\\n', '\\x1b')
    """
    if text.isprintable():  # the common case, in one C-level pass
        return ()
    return tuple(sorted({c for c in text if not c.isprintable()}))
