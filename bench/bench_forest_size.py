"""The Stage 2 forest's size against its quality: out-of-fold log loss of the sigmoid-calibrated random forest.

For one table, per forest setting (JSON merged into the default `stage2.params.random_forest`): 5-fold stratified
out-of-fold probabilities of `CalibratedClassifierCV(forest, cv=5, method='sigmoid', ensemble=False)`, their log loss
and ROC AUC, the difference to the first setting with the paired standard error of the per-row difference, and the
forest's node count when fitted on the whole table. One core (`n_jobs = 1`). Prints one line per setting; the figures
of notebook 08's table are in reports/bench/forest_size.txt.

Usage: python bench/bench_forest_size.py NAME TABLE TARGET POSITIVE [--exclude A,B] [--settings JSON]
  e.g. python bench/bench_forest_size.py tv ../shared/data/tv_subscriptions.csv.gz target 1 --exclude id
"""
import argparse, json, time
import numpy as np, pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from bayespilot.candidates import build_candidate
from bayespilot.config import load_settings
from bayespilot.schema import infer_schema, target_to_binary

DEFAULT = '[{}, {"min_samples_leaf": 20}, {"n_estimators": 100, "min_samples_leaf": 20}, ' \
          '{"n_estimators": 100, "min_samples_leaf": 40}]'

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('name', help='a label for the printed lines')
    ap.add_argument('table', help='CSV (optionally .gz) with the label column')
    ap.add_argument('target', help='label column')
    ap.add_argument('positive', help="the label's value meaning churned")
    ap.add_argument('--exclude', default='', help='comma-separated columns that are not features (ids, costs)')
    ap.add_argument('--settings', default=DEFAULT, help='JSON list of forest settings; the first is the reference')
    a = ap.parse_args(argv)
    df = pd.read_csv(a.table)
    y = target_to_binary(df[a.target], int(a.positive) if a.positive.isdigit() else a.positive)
    X = df.drop(columns=[c for c in [a.target, *a.exclude.split(',')] if c in df])
    s = load_settings(None)
    schema, base = infer_schema(X, s.data), s.stage2.params['random_forest']
    cv, ref = StratifiedKFold(5, shuffle=True, random_state=0), None
    for extra in json.loads(a.settings):
        m = build_candidate('random_forest', schema, None, base | extra)
        m.set_params(**{m.steps[-1][0] + '__n_jobs': 1})
        t = time.time()
        pr = cross_val_predict(CalibratedClassifierCV(m, cv=5, method='sigmoid', ensemble=False), X, y, cv=cv,
                               method='predict_proba')[:, 1]
        nodes = sum(e.tree_.node_count for e in m.fit(X, y).steps[-1][1].estimators_)
        p = np.clip(pr, 1e-15, 1 - 1e-15)
        ll = -(y * np.log(p) + (1 - y) * np.log(1 - p))
        diff = '' if ref is None else \
            f' diff {(ll - ref).mean():+.5f} paired SE {(ll - ref).std(ddof=1) / np.sqrt(len(ll)):.5f}'
        ref = ll if ref is None else ref
        print(a.name, extra, f'logloss {ll.mean():.5f} auc {roc_auc_score(y, pr):.4f} nodes {nodes}{diff} '
              f'{time.time() - t:.0f}s', flush=True)

if __name__ == '__main__': main()
