"""DAVIS's semantics list -> seg_jax's table of person object ids (package data ``davis_person_ids.json``).

  python -m seg_jax.data.public.davis_table davis_semantics.json > seg_jax/data/public/davis_person_ids.json

``davis_semantics.json`` (DAVIS 2017, https://github.com/davisvideochallenge/davis-2017, ``data/``) maps each
sequence to ``{object id (str): category}``; the table keeps, per sequence, the sorted ids whose category is
``person``.
"""
from __future__ import annotations

import json
import sys

SOURCE = ("DAVIS 2017 davis_semantics.json (official copy: https://github.com/davisvideochallenge/davis-2017, "
          "data/davis_semantics.json), through python -m seg_jax.data.public.davis_table")


def person_ids(semantics: dict[str, dict[str, str]]) -> dict[str, list[int]]:
    """{sequence: {id: category}} -> {sequence: sorted ids whose category is 'person'}."""
    return {seq: sorted(int(k) for k, cat in objects.items() if cat.strip().lower() == "person")
            for seq, objects in sorted(semantics.items())}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m seg_jax.data.public.davis_table davis_semantics.json", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        table = person_ids(json.load(f))
    print(json.dumps({"_source": SOURCE, "person_ids": table}, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
