"""A seeded generator of two- and three-step integer word problems with known answers.

``generate(n, seed)`` returns the same problems for the same arguments on any
machine (it uses only :class:`random.Random`). Every answer is a
non-negative integer computed alongside the text, never parsed back from it.

    python benchmarks/word_problems.py --n 5 --seed 0
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random

NAMES = ["Ana", "Ben", "Chen", "Dana", "Eli", "Fatima", "Goran", "Hana", "Ivan", "Jun", "Kofi", "Lena"]
ITEMS = ["apples", "pencils", "stickers", "marbles", "cookies", "stamps", "books", "shells"]


@dataclasses.dataclass(frozen=True)
class Problem:
    question: str
    answer: int
    steps: int


def _buy_packs(r: random.Random) -> Problem:
    name, item = r.choice(NAMES), r.choice(ITEMS)
    a, b, c = r.randint(2, 30), r.randint(2, 9), r.randint(2, 12)
    return Problem(f"{name} has {a} {item}. {name} buys {b} packs with {c} {item} in each pack. "
                   f"How many {item} does {name} have now?", a + b * c, 2)


def _boxes_used(r: random.Random) -> Problem:
    name, item = r.choice(NAMES), r.choice(ITEMS)
    a, b = r.randint(3, 15), r.randint(2, 9)
    c = r.randint(1, a * b - 1)
    return Problem(f"A box holds {a} {item}. {name} fills {b} boxes and then gives away {c} {item}. "
                   f"How many {item} does {name} have left?", a * b - c, 2)


def _share(r: random.Random) -> Problem:
    name, item = r.choice(NAMES), r.choice(ITEMS)
    friends, each = r.randint(2, 8), r.randint(2, 12)
    kept = r.randint(1, 20)
    total = friends * each + kept
    return Problem(f"{name} has {total} {item}, keeps {kept} and shares the rest equally among {friends} friends. "
                   f"How many {item} does each friend get?", each, 2)


def _wages(r: random.Random) -> Problem:
    name = r.choice(NAMES)
    rate, hours, spent, bonus = r.randint(5, 25), r.randint(2, 9), r.randint(1, 40), r.randint(1, 30)
    spent = min(spent, rate * hours)
    return Problem(f"{name} earns {rate} dollars per hour and works {hours} hours. {name} spends {spent} dollars "
                   f"and then gets a bonus of {bonus} dollars. How many dollars does {name} have now?",
                   rate * hours - spent + bonus, 3)


def _chairs(r: random.Random) -> Problem:
    rows, per_row = r.randint(3, 15), r.randint(3, 12)
    removed, added = r.randint(1, rows * per_row // 2), r.randint(1, 25)
    return Problem(f"A hall has {rows} rows of {per_row} chairs. {removed} chairs are taken away and {added} "
                   f"new chairs are brought in. How many chairs are in the hall now?",
                   rows * per_row - removed + added, 3)


def _trips(r: random.Random) -> Problem:
    name = r.choice(NAMES)
    trips, per_trip, days = r.randint(2, 6), r.randint(3, 20), r.randint(2, 7)
    lost = r.randint(1, trips * per_trip * days // 3)
    return Problem(f"{name} carries {per_trip} bricks per trip and makes {trips} trips a day for {days} days. "
                   f"{lost} bricks break. How many unbroken bricks did {name} carry?",
                   trips * per_trip * days - lost, 3)


TEMPLATES = [_buy_packs, _boxes_used, _share, _wages, _chairs, _trips]


def generate(n: int, seed: int = 0) -> list[Problem]:
    """``n`` problems, cycling through the templates, reproducible from ``seed``."""
    r = random.Random(seed)
    return [TEMPLATES[i % len(TEMPLATES)](r) for i in range(n)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for problem in generate(args.n, args.seed):
        print(json.dumps(dataclasses.asdict(problem)))
