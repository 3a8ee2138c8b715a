"""Linear TreeSHAP (bayespilot.treeshap) against the algorithm it replaced: path-dependent TreeSHAP as Lundberg et al.
write it (Algorithm 2: EXTEND / UNWIND over the subsets of path features, O(leaves x depth^2) per tree), kept here
only as a test oracle. Both are exact, so they must agree to rounding (1e-12) on forests and boosting models with
missing values, deep trees that split one feature many times on a path, one row at a time and in batches (how much
faster the new walk is: bench/bench_reasons.py).

PYTEST_DONT_REWRITE (plain asserts: numba caches the oracle only for a module imported as written)."""
import numba, numpy as np
import pytest
from threadpoolctl import threadpool_limits
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from bayespilot.treeshap import tree_arrays

# ---- the oracle: Algorithm 2 on the flat node arrays of `TreeArrays` (the implementation before Linear TreeSHAP) ----

@numba.njit(cache=True, nogil=True)
def extend_path(feat, zero, one, pw, o, d, z, w, f, inv):
    "Add a split on feature `f` (cover share `z`, row share `w`) at depth `d` of the path at offset `o`."
    feat[o + d], zero[o + d], one[o + d] = f, z, w
    pw[o + d] = 1.0 if d == 0 else 0.0
    r = inv[d + 1]                                  # inv[j] = 1 / j: no division in the inner loops
    for i in range(d - 1, -1, -1):
        pw[o + i + 1] += w * pw[o + i] * (i + 1) * r
        pw[o + i] = z * pw[o + i] * (d - i) * r

@numba.njit(cache=True, nogil=True)
def unwind_path(feat, zero, one, pw, o, d, k, inv):
    "Remove the split at position `k` from the path at offset `o` of depth `d`."
    w, z, nxt = one[o + k], zero[o + k], pw[o + d]
    if w != 0:
        iw = 1.0 / w
        for i in range(d - 1, -1, -1):
            tmp = pw[o + i]
            pw[o + i] = nxt * (d + 1) * inv[i + 1] * iw
            nxt = tmp - pw[o + i] * z * (d - i) * inv[d + 1]
    else:
        iz = 1.0 / z
        for i in range(d - 1, -1, -1): pw[o + i] = pw[o + i] * (d + 1) * iz * inv[d - i]
    for i in range(k, d):
        feat[o + i], zero[o + i], one[o + i] = feat[o + i + 1], zero[o + i + 1], one[o + i + 1]

@numba.njit(cache=True, nogil=True)
def unwound_sum(zero, one, pw, o, d, k, inv):
    "Total subset weight of the path at offset `o` (depth `d`) with the split at position `k` taken out."
    w, z, nxt, total = one[o + k], zero[o + k], pw[o + d], 0.0
    if w != 0:
        iw = 1.0 / w
        for i in range(d - 1, -1, -1):
            tmp = nxt * (d + 1) * inv[i + 1] * iw
            total += tmp
            nxt = pw[o + i] - tmp * z * (d - i) * inv[d + 1]
    elif z != 0:
        iz = 1.0 / z
        for i in range(d - 1, -1, -1): total += pw[o + i] * iz * (d + 1) * inv[d - i]
    return total

@numba.njit(cache=True, nogil=True)
def tree_shap_tree(x, phi, root, fe, th, le, ri, dl, cv, va, live, feat, zero, one, pw, stack_i, stack_f, inv):
    "Algorithm 2 on the tree at `root` for row `x`: each feature's exact share of the leaf values, added to `phi`."
    top = 0                                           # a pending node: node, parent path offset, depth, feature ...
    stack_i[0, 0], stack_i[0, 1], stack_i[0, 2], stack_i[0, 3] = root, 0, 0, -1
    stack_f[0, 0], stack_f[0, 1] = 1.0, 1.0           # ... and its cover share and row share
    while top >= 0:
        node, o, d, pf = stack_i[top, 0], stack_i[top, 1], stack_i[top, 2], stack_i[top, 3]
        pz, po = stack_f[top, 0], stack_f[top, 1]
        top -= 1
        n = o + d + 1                                 # this node's path starts after its parent's
        for i in range(d + 1):
            feat[n + i], zero[n + i], one[n + i], pw[n + i] = feat[o + i], zero[o + i], one[o + i], pw[o + i]
        extend_path(feat, zero, one, pw, n, d, pz, po, pf, inv)
        if le[node] < 0:
            for i in range(1, d + 1):
                phi[feat[n + i]] += unwound_sum(zero, one, pw, n, d, i, inv) * (one[n + i] - zero[n + i]) * va[node]
            continue
        f, v = fe[node], x[fe[node]]
        hot = dl[node] if v != v else (le[node] if v <= th[node] else ri[node])
        cold = ri[node] if hot == le[node] else le[node]
        iz, io, k = 1.0, 1.0, 0
        while k <= d and feat[n + k] != f: k += 1
        if k <= d:                                    # the feature split before on this path: undo that split
            iz, io = zero[n + k], one[n + k]
            unwind_path(feat, zero, one, pw, n, d, k, inv)
            d -= 1
        for child, share in ((cold, 0.0), (hot, io)):  # the hot child is walked first
            if not live[child]: continue              # only zero-valued leaves below: they add exactly nothing
            top += 1
            stack_i[top, 0], stack_i[top, 1], stack_i[top, 2], stack_i[top, 3] = child, n, d + 1, f
            stack_f[top, 0], stack_f[top, 1] = cv[child] / cv[node] * iz, share

@numba.njit(cache=True, nogil=True)
def leaf_of(x, node, fe, th, le, ri, dl):
    "The leaf row `x` reaches from `node`; a missing value goes to the child training sent missing values to."
    while le[node] >= 0:
        v = x[fe[node]]
        node = dl[node] if v != v else (le[node] if v <= th[node] else ri[node])
    return node

@numba.njit(cache=True, nogil=True)
def tree_shap_rows(X, fe, th, le, ri, dl, cv, va, live, roots, depth):
    "Path-dependent TreeSHAP of every row of `X` over the trees at `roots`, and each row's sum of leaf values."
    n, size = X.shape[0], (depth + 3) * (depth + 4) // 2
    phi, total = np.zeros((n, X.shape[1])), np.zeros(n)
    feat, zero, one, pw = np.zeros(size, np.int64), np.zeros(size), np.zeros(size), np.zeros(size)
    stack_i, stack_f = np.zeros((2 * depth + 4, 4), np.int64), np.zeros((2 * depth + 4, 2))
    inv = 1.0 / np.maximum(np.arange(depth + 4.0), 1.0)
    for r in range(n):
        for t in roots:
            if live[t]:
                tree_shap_tree(X[r], phi[r], t, fe, th, le, ri, dl, cv, va, live, feat, zero, one, pw, stack_i,
                               stack_f, inv)
            total[r] += va[leaf_of(X[r], t, fe, th, le, ri, dl)]
    return phi, total


def alg2_shap(ta, X) -> tuple[np.ndarray, np.ndarray]:
    "Algorithm 2's contributions to the margin of every row of `X`, and the margin (as `TreeArrays.shap` returns)."
    phi, tot = tree_shap_rows(ta.rows(X), ta.feature, ta.threshold, ta.left, ta.right, ta.default, ta.cover, ta.value,
                              ta.live, ta.roots, ta.depth)
    return phi * ta.scale, ta.offset + tot * ta.scale


# ---- the checks ----

@pytest.fixture(scope='module')
def table():
    "Numbers with 20% missing values, an interaction and a threshold effect; few features, so paths repeat them."
    threadpool_limits(1)
    rng = np.random.default_rng(14)
    X = rng.normal(size=(2500, 4)); X[rng.random(X.shape) < 0.2] = np.nan
    z = np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) * (np.nan_to_num(X[:, 2]) > 0) - (np.nan_to_num(X[:, 3]) > 1)
    return X, (z + rng.normal(size=2500) > 0).astype(int)


MODELS = {'deep forest': RandomForestClassifier(n_estimators=4, random_state=0, n_jobs=1),       # depth ~25
          'depth-10 forest': RandomForestClassifier(n_estimators=20, max_depth=10, min_samples_leaf=5, random_state=0,
                                                    n_jobs=1),
          'boosting': HistGradientBoostingClassifier(max_iter=60, max_leaf_nodes=63, random_state=0)}


@pytest.mark.parametrize('name', list(MODELS))
def test_linear_treeshap_equals_algorithm_2(table, name):
    X, y = table
    ta = tree_arrays(MODELS[name].fit(X[:2000], y[:2000]))
    Xt = X[2000:2150] if name == 'deep forest' else X[2000:]          # Algorithm 2 is slow on deep trees
    assert ta.depth >= (20 if name == 'deep forest' else 8) and np.isnan(Xt).any(axis=1).mean() > 0.5
    old, old_margin = alg2_shap(ta, Xt)
    new, margin = ta.shap(Xt)
    assert np.abs(new - old).max() < 1e-12 * max(1.0, np.abs(old).max())
    assert np.array_equal(margin, old_margin)
    rows = np.array([ta.shap_row(x)[0] for x in Xt[:60]])
    assert np.abs(rows - new[:60]).max() < 1e-13
    own = np.array([0, 0, 1, 1])                                  # columns summed onto two "raw features"
    summed = ta.shap(Xt, own, 2)[0]
    assert np.abs(summed - np.column_stack([new[:, :2].sum(1), new[:, 2:].sum(1)])).max() < 1e-13

