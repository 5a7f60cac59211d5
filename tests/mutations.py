"""Mutations for the fixed-seed fuzz tests: a JSON sample with a few of its values
swapped for others of every JSON type, or its keys deleted."""

from __future__ import annotations

import copy
import random
from typing import Any


def places(value: Any, at: tuple = ()) -> list[tuple]:
    """Every place in a JSON value, as the keys and indexes that reach it (the value
    itself first, at `()`)."""
    found = [at]
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else [])  # fmt: skip
    for key, child in items:
        found += places(child, (*at, key))
    return found


def mutated(sample: Any, spots: list[tuple], rng: random.Random, odd: list[Any]) -> Any:
    """A copy of `sample` with 1 to 6 of `spots` (from `places`) changed: deleted from
    their object (a quarter of the time), else replaced by one of `odd`."""
    data = copy.deepcopy(sample)
    for at in rng.sample(spots, k=min(len(spots), rng.randint(1, 6))):
        parent = data
        try:
            for key in at[:-1]:
                parent = parent[key]
            if isinstance(parent, dict) and rng.random() < 0.25:
                del parent[at[-1]]
            else:
                parent[at[-1]] = copy.deepcopy(rng.choice(odd))
        except (KeyError, IndexError, TypeError):
            pass  # the place was replaced by an earlier change
    return data


# Values of every JSON type, and some that strain a reader (NUL, huge numbers).
ODD = [None, 0, -1, "", "x", [], {}, [1], {"a": 1}, True, 1e308, 2**70, "\x00", "9" * 40]


def fuzz_otlp_json(client: Any, path: str, sample: Any, key: str, *, runs: int = 60,
                   seed: int = 20261206) -> None:  # fmt: skip
    """POST `runs` mutations of an OTLP/JSON export to `path`: each answer is a 200,
    or a 400 whose message says why (never a 5xx)."""
    import json

    rng = random.Random(seed)
    spots = places(sample)[1:]
    for _ in range(runs):
        data = mutated(sample, spots, rng, ODD)
        response = client.post(path, json.dumps(data), content_type="application/json",
                               headers={"Authorization": f"Bearer {key}"})  # fmt: skip
        assert response.status_code in (200, 400), (response.status_code, json.dumps(data)[:2000])
        if response.status_code == 400:
            assert response.json()["message"]
