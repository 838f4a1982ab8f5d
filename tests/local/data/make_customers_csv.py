"""Writes customers.csv: a churn table as it comes (categorical text columns, numbers, NA cells).

`python tests/local/data/make_customers_csv.py` rewrites it; the seed makes it the same file.
Whether a customer churned depends on both categorical columns and the numbers, with 4% of the
labels flipped; 3-6% of the cells of four columns are missing, spelled each way a CSV spells it.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

ROWS = 1500
SEED = 14
MISSING_SPELLINGS = ["NA", "", "nan", "null", "None", "?"]


def main() -> None:
    rng = np.random.default_rng(SEED)
    plan = rng.choice(["basic", "plus", "premium"], ROWS, p=[0.45, 0.35, 0.2])
    region = rng.choice(["north", "south", "east", "west"], ROWS)
    age = rng.integers(18, 76, ROWS)
    spend = np.round(rng.gamma(4.0, 12.0, ROWS), 2)
    calls = rng.poisson(2.0, ROWS)
    score = (
        1.6 * (plan == "basic")
        - 1.4 * (plan == "premium")
        + 1.3 * (region == "south")
        - 0.9 * (region == "east")
        + 0.45 * (calls - 2)
        - 0.04 * (age - 45)
        - 0.02 * (spend - 48)
    )
    churned = score > 0.3
    churned ^= rng.random(ROWS) < 0.04
    columns = {
        "plan": plan.astype(object),
        "region": region.astype(object),
        "age": age.astype(object),
        "monthly_spend": spend.astype(object),
        "support_calls": calls.astype(object),
        "churned": np.where(churned, "yes", "no").astype(object),
    }
    for name, share in (("plan", 0.03), ("region", 0.05), ("age", 0.06), ("monthly_spend", 0.04)):
        rows = rng.random(ROWS) < share
        columns[name][rows] = rng.choice(MISSING_SPELLINGS, int(rows.sum()))
    path = Path(__file__).with_name("customers.csv")
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(columns))
        writer.writerows(zip(*columns.values(), strict=True))


if __name__ == "__main__":
    main()
