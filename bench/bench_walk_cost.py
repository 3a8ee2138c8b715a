"""Where one row's TreeSHAP walk spends its time: the deployed forest's kernel on one thread, taken apart.

Issue 14 asks `/predict?explain=true` to cost at most 1 ms more than `/predict`; the default stack's forest is most of
the difference. This script measures, on the same rows and objects in one run (median of --repeats passes over --rows
rows, the four taking turns; microseconds per row):
- walk: `treeshap.row_phi` over all trees as served (m Gauss-Legendre points, leaf pairs from tables);
- one point: the same walk at 1 point instead of m (contributions not exact: a timing only) - what the arithmetic
  that grows with the points costs, against what every node visit costs whatever the arithmetic;
- no pair tables: the same layout with every pair flag cleared, so that both leaves of a pair are visited (exact:
  checked against the walk);
- to the leaves: `treeshap.leaf_sum`, the prediction's own walk of the same trees.
Counts: live nodes, leaf pairs, node visits of the walk (live nodes less the live leaves the pair tables take), and
nanoseconds per visit. Figures: reports/bench/walk_cost.json.
Usage: python bench/bench_walk_cost.py [--rows N] [--repeats R]
"""
import argparse, json, os, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, portable
from bench_score import deployed_model

import joblib, numpy as np


def per_row_us(fns: dict, X, repeats: int) -> dict:
    """Per name of `fns`, the median over `repeats` passes of the microseconds per row of `fn(x)` over the rows of `X`:
    the passes of all of them take turns, so that the machine's slow and quick moments fall on each alike."""
    for fn in fns.values(): fn(X[0])
    passes = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            for x in X: fn(x)
            passes[k].append((time.perf_counter() - t) / len(X) * 1e6)
    return {k: round(float(np.median(v)), 1) for k, v in passes.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--rows', type=int, default=300, help='customers walked per pass (synthetic, seed 7)')
    ap.add_argument('--repeats', type=int, default=9, help='passes of each, taking turns; the median is reported')
    a = ap.parse_args(argv)
    from bayespilot.config import DataSettings
    from bayespilot.data import prepare
    from bayespilot.reasons import explainer
    from bayespilot.synthetic import generate
    from bayespilot.treeshap import PAIR, LEAF, LIVE, leaf_sum, new_scratch, row_phi
    tmp = Path(tempfile.mkdtemp(prefix='bench_walk_'))
    model = deployed_model(tmp)
    stack = joblib.load(model)
    feats = stack.estimators_[0].steps[0][1].schema.features
    base = prepare(generate(a.rows, seed=7)[0], DataSettings()).X[feats]
    part = next(p for p in explainer(stack).trees if type(p.model).__name__ == 'RandomForestClassifier')
    ta = part.trees
    X = ta.rows(part.prep.matrix(base))
    nodes, roots, t, w, A = ta.layout
    no_pairs = nodes.copy(); no_pairs['flags'] = no_pairs['flags'] & np.uint8(0xFF ^ PAIR)
    F, I, E = new_scratch(1, ta.depth, len(t), X.shape[1])
    own, n = np.arange(X.shape[1]), len(roots)
    def walk(nd, tt, ww):
        "Row `x` -> its contributions walked on layout `nd` at the points `tt` (weights `ww`)."
        def phi(x):
            out = np.zeros(len(own)); row_phi(x, out, own, nd, roots, tt, ww, A, F[0], I[0], E[0], 0, n); return out
        return phi
    diff = max(float(np.abs(walk(nodes, t, w)(x) - walk(no_pairs, t, w)(x)).max()) for x in X)
    at = np.flatnonzero(nodes['flags'] & PAIR)
    in_pairs = int(((nodes['flags'][at + 1] & LIVE) != 0).sum() + ((nodes['flags'][at + 2] & LIVE) != 0).sum())
    live = int((nodes['flags'] & LIVE).astype(bool).sum())
    res = {'model': portable(model, tmp), 'rows': a.rows, 'repeats': a.repeats, 'cores': os.cpu_count(),
           'load_average_at_start': [round(x, 2) for x in os.getloadavg()],
           'forest': {'trees': n, 'nodes': len(nodes), 'live_nodes': live, 'leaf_pairs': len(at),
                      'live_leaves_in_pairs': in_pairs, 'visits': live - in_pairs, 'points': len(t),
                      'leaves': int((nodes['flags'] & LEAF).astype(bool).sum())}}
    us = per_row_us({'walk': walk(nodes, t, w), 'one_point': walk(nodes, t[:1], w[:1]),
                     'no_pair_tables': walk(no_pairs, t, w),
                     'to_the_leaves': lambda x: leaf_sum(x, nodes, roots, 0, n)}, X, a.repeats)
    f = res['forest']
    res['per_row_us'] = us
    res['derived'] = {
        'ns_per_visit': round(us['walk'] * 1e3 / f['visits'], 1),
        'share_of_the_walk_that_grows_with_the_points': round(1 - us['one_point'] / us['walk'], 3),
        'ns_per_leaf_visit_saved_by_the_pair_tables': round((us['no_pair_tables'] - us['walk']) * 1e3 / in_pairs, 1),
        'walk_over_prediction_walk': round(us['walk'] / us['to_the_leaves'], 1),
        'no_pair_tables_max_abs_difference': diff}
    res['load_average_at_end'] = [round(x, 2) for x in os.getloadavg()]
    res['note'] = ('one thread, wall time on a shared 2-core machine; the four walks ran on the same rows and objects '
                   'in this run. one_point is not an exact explanation: it times the walk with the arithmetic over the '
                   'points cut to one point')
    out = ROOT/'reports'/'bench'/'walk_cost.json'
    out.write_text(json.dumps(res, indent=2) + '\n')
    print(json.dumps({k: res[k] for k in ('forest', 'per_row_us', 'derived')}, indent=1))
    print(f'figures: {portable(out)}')


if __name__ == '__main__': main()
