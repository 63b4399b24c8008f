#!/usr/bin/env python3
"""Generates data/transactions.csv: card transactions, a few of them fraudulent.

Run once; the CSV is committed. The fixed seed and Python's own Mersenne Twister
(stable across CPython versions for random() and gauss()) make it reproducible:
re-running this script rewrites the same bytes.
"""
import csv
import random
import sys
from pathlib import Path

SEED = 20240611
ROWS = 400
FRAUD_RATE = 0.04
CATEGORIES = ["grocery", "fuel", "restaurant", "online", "travel", "electronics"]


def main() -> None:
    rng = random.Random(SEED)
    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "data" / "transactions.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["transaction_id", "amount", "hour", "category", "distance_km", "foreign", "is_fraud"])
        for i in range(ROWS):
            fraud = rng.random() < FRAUD_RATE
            if fraud:
                amount = round(rng.uniform(400, 3000), 2)
                hour = rng.choice([0, 1, 2, 3, 4, 23])
                category = rng.choice(["online", "electronics", "travel"])
                distance = round(rng.uniform(300, 9000), 1)
                foreign = 1 if rng.random() < 0.7 else 0
            else:
                amount = round(max(1.0, rng.gauss(45, 30)), 2)
                hour = min(23, max(0, int(rng.gauss(14, 4))))
                category = rng.choice(CATEGORIES)
                distance = round(abs(rng.gauss(8, 10)), 1)
                foreign = 1 if rng.random() < 0.03 else 0
            w.writerow([f"tx{i:05d}", f"{amount:.2f}", hour, category, f"{distance:.1f}", foreign, int(fraud)])


if __name__ == "__main__":
    main()
