#!/usr/bin/env python3
"""Trains the fraud IsolationForest as train.py does, logged to MLflow.

    python train_mlflow.py --data data/transactions.csv [--n-estimators 100] ...   (MLFLOW_TRACKING_URI default: file:./mlruns)

MLflow's scikit-learn autologging records the estimator's parameters and logs the model
(MLmodel, sklearn flavour); the training data is logged with mlflow.log_input (name, digest,
source = the CSV path as given), and precision/recall with mlflow.log_metrics. Run it from
a git work tree and MLflow also records the commit (mlflow.source.git.commit).
Prints the run id. Needs mlflow-skinny, pandas and scikit-learn; nothing is downloaded.
"""
import argparse
import os
import warnings

import mlflow
import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

CATEGORIES = ["grocery", "fuel", "restaurant", "online", "travel", "electronics"]


def features(df: pd.DataFrame) -> np.ndarray:
    onehot = np.stack([(df["category"] == c).astype(float) for c in CATEGORIES], axis=1)
    base = df[["amount", "hour", "distance_km", "foreign"]].astype(float).to_numpy()
    return np.concatenate([base, onehot], axis=1)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="data/transactions.csv")
    p.add_argument("--n-estimators", type=int, default=100)
    p.add_argument("--contamination", type=float, default=0.04)
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()

    # MLflow 3 keeps the file store in maintenance mode; this example uses it on purpose (no server).
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    os.environ.setdefault("MLFLOW_TRACKING_URI", "file:" + os.path.abspath("mlruns"))
    warnings.filterwarnings("ignore", category=UserWarning)  # schema inference hints about integer columns
    mlflow.sklearn.autolog(log_datasets=False, silent=True)
    df = pd.read_csv(a.data)
    x, y = features(df), df["is_fraud"].to_numpy()
    with mlflow.start_run() as run:
        mlflow.log_input(mlflow.data.from_pandas(df, source=a.data, name="transactions"), context="training")
        model = IsolationForest(n_estimators=a.n_estimators, contamination=a.contamination, random_state=a.seed, n_jobs=1)
        model.fit(x)
        flagged = model.predict(x) == -1
        tp = int(np.sum(flagged & (y == 1)))
        mlflow.log_metrics({"precision": round(tp / max(1, int(np.sum(flagged))), 4), "recall": round(tp / max(1, int(np.sum(y))), 4)})
        print(run.info.run_id)


if __name__ == "__main__":
    main()
