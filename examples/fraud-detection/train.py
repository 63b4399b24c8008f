#!/usr/bin/env python3
"""Trains an IsolationForest on data/transactions.csv and saves it with joblib.

    python3 train.py --data data/transactions.csv --out out/ [--n-estimators 100] [--contamination 0.04] [--seed 7]

Writes <out>/model.joblib and <out>/metrics.json. Deterministic for given data and
parameters (fixed random_state, single job).
"""
import argparse
import csv
import json
from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import IsolationForest

CATEGORIES = ["grocery", "fuel", "restaurant", "online", "travel", "electronics"]


def load(path: Path):
    features, labels = [], []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            onehot = [1.0 if row["category"] == c else 0.0 for c in CATEGORIES]
            features.append([float(row["amount"]), float(row["hour"]), float(row["distance_km"]), float(row["foreign"]), *onehot])
            labels.append(int(row["is_fraud"]))
    return np.asarray(features, dtype=np.float64), np.asarray(labels)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, default=Path(__file__).parent / "data" / "transactions.csv")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n-estimators", type=int, default=100)
    p.add_argument("--contamination", type=float, default=0.04)
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()

    x, y = load(a.data)
    model = IsolationForest(n_estimators=a.n_estimators, contamination=a.contamination, random_state=a.seed, n_jobs=1)
    model.fit(x)
    flagged = model.predict(x) == -1
    tp = int(np.sum(flagged & (y == 1)))
    metrics = {
        "rows": int(len(y)),
        "fraud_rows": int(np.sum(y)),
        "flagged": int(np.sum(flagged)),
        "precision": round(tp / max(1, int(np.sum(flagged))), 4),
        "recall": round(tp / max(1, int(np.sum(y))), 4),
        "params": {"n_estimators": a.n_estimators, "contamination": a.contamination, "seed": a.seed},
    }
    a.out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, a.out / "model.joblib")
    (a.out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    print(json.dumps(metrics, sort_keys=True))


if __name__ == "__main__":
    main()
