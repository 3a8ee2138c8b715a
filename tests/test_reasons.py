"""Reason codes (issue 14): base + contributions equal the served probability to 1e-9 on 3 000 random rows (missing
values, unseen levels, values beyond the training range) for every model kind BayesPilot deploys, on the synthetic
table and on the real Telco table; the tree contributions equal shap's TreeExplainer on the margin to 1e-9 (shap is a
development dependency: those tests skip without it)."""
import numpy as np, pandas as pd
import pytest
from threadpoolctl import threadpool_limits
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from bayespilot.config import ConfigError, DataSettings, FeatureSettings
from bayespilot.calibration import LogOdds, refit_calibrated
from bayespilot.data import prepare, read_table
from bayespilot.features import make_pipeline
from bayespilot.reasons import check_top_k, explainer, top_reasons
from bayespilot.scorer import compile_scorer, random_rows
from bayespilot.stacking import prefit_stack
from bayespilot.synthetic import generate
from bayespilot.treeshap import tree_shap
from bayespilot.trees import NotCompiled

N_ROWS = 3000


def estimators():
    "Small versions of the three deployed model families (seconds to fit)."
    return {'lr': LogisticRegression(max_iter=1000),
            'rf': RandomForestClassifier(n_estimators=10, max_depth=8, min_samples_leaf=5, max_samples=0.5,
                                         random_state=0, n_jobs=1),
            'hgb': HistGradientBoostingClassifier(max_iter=30, random_state=0)}


def deployed_kinds(X, y, schema) -> dict:
    "Every kind of model Stage 2 deploys, fitted on (X, y): bare pipelines, calibrated ones, LogOdds, the stack."
    fs, cv = FeatureSettings(), StratifiedKFold(3, shuffle=True, random_state=0)
    pipe = {k: make_pipeline(schema, fs, e) for k, e in estimators().items()}
    kinds = {f'{k} pipeline': p.fit(X, y) for k, p in pipe.items()}
    kinds['lr+sigmoid'] = refit_calibrated(make_pipeline(schema, fs, estimators()['lr']), X, y, 'sigmoid', cv)[1]
    kinds['rf+isotonic (LogOdds)'] = refit_calibrated(make_pipeline(schema, fs, estimators()['rf']), X, y,
                                                      'isotonic', cv)[1]
    kinds['rf+sigmoid (LogOdds)'] = refit_calibrated(make_pipeline(schema, fs, estimators()['rf']), X, y,
                                                     'sigmoid', cv)[1]
    kinds['hgb+sigmoid'] = refit_calibrated(make_pipeline(schema, fs, estimators()['hgb']), X, y, 'sigmoid', cv)[1]
    kinds['hgb+isotonic ensemble'] = CalibratedClassifierCV(make_pipeline(schema, fs, estimators()['hgb']), cv=2,
                                                           method='isotonic').fit(X, y)
    kinds['rf LogOdds'] = LogOdds.of(kinds['rf pipeline'])
    kinds['stack'] = prefit_stack({k: kinds[k] for k in ('lr+sigmoid', 'rf+isotonic (LogOdds)', 'hgb+sigmoid')},
                                  [0.45, 0.2, 0.5], 0.05)
    return kinds


@pytest.fixture(scope='module')
def synthetic():
    "The deployed kinds on 3 000 synthetic customers, and 3 000 random rows of their schema."
    threadpool_limits(1)
    d = prepare(generate(3000, seed=3)[0], DataSettings())
    rows = random_rows(d.schema, N_ROWS, seed=11)
    return deployed_kinds(d.X, d.y, d.schema), rows, pd.DataFrame(rows, columns=d.schema.features)


def additivity_error(model, frame) -> float:
    "max |base + sum of contributions - predict_proba| over the rows of `frame`."
    e = explainer(model).explain(frame)
    served = model.predict_proba(frame)[:, 1]
    assert np.abs(e.probability - served).max() < 1e-9
    return float(np.abs(e.base + e.contributions.to_numpy().sum(axis=1) - served).max())


KINDS = ['lr pipeline', 'rf pipeline', 'hgb pipeline', 'lr+sigmoid', 'rf+isotonic (LogOdds)', 'rf+sigmoid (LogOdds)',
         'hgb+sigmoid', 'hgb+isotonic ensemble', 'rf LogOdds', 'stack']


@pytest.mark.parametrize('kind', KINDS)
def test_additivity_on_random_rows(synthetic, kind):
    kinds, _, frame = synthetic
    assert additivity_error(kinds[kind], frame) < 1e-9


def test_row_path_equals_chunk_path(synthetic):
    kinds, rows, frame = synthetic
    ex, stack = explainer(kinds['stack']), kinds['stack']
    chunk = ex.explain(frame.iloc[:40])
    for i, r in enumerate(rows[:40]):
        one = ex.explain_row(r)
        assert abs(one.base + one.contributions.to_numpy().sum() - stack.predict_proba(pd.DataFrame([r]))[0, 1]) < 1e-9
        assert np.abs(one.contributions.to_numpy()[0] - chunk.contributions.to_numpy()[i]).max() < 1e-12
    assert abs(chunk.probability - compile_scorer(stack).batch(frame.iloc[:40])).max() < 1e-9


def test_reasons_read_like_a_person_would(synthetic):
    kinds, rows, _ = synthetic
    e = explainer(kinds['stack']).explain_row(rows[0])
    reasons = top_reasons(e)
    assert len(reasons) == 4 and [set(r) for r in reasons] == [{'feature', 'value', 'contribution', 'text'}] * 4
    sizes = [abs(r['contribution']) for r in reasons]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == e.contributions.abs().to_numpy().max()
    for r in reasons:
        assert r['text'].startswith(f"{r['feature']} = ")
        assert ('raises' if r['contribution'] > 0 else 'lowers') in r['text']
    with pytest.raises(ConfigError, match='top_k'): check_top_k(-1)
    with pytest.raises(ConfigError, match='top_k'): check_top_k('four')


def test_uncovered_model_names_the_component():
    from sklearn.svm import SVC
    with pytest.raises(NotCompiled, match='SVC'): explainer(SVC())


def test_telco_additivity(shared_data):
    "The real Telco table: text numbers, blanks, many categoricals; the stack of all three families."
    threadpool_limits(1)
    d = prepare(read_table(shared_data/'telco_churn.csv'), DataSettings(target='Churn', positive='Yes',
                                                                       id='customerID'))
    fs, cv = FeatureSettings(), StratifiedKFold(3, shuffle=True, random_state=0)
    X, y = d.X.iloc[:2000], d.y[:2000]                                          # fit on 2 000 customers
    cal = {k: refit_calibrated(make_pipeline(d.schema, fs, e), X, y, m, cv)[1]
           for (k, e), m in zip(estimators().items(), ('sigmoid', 'isotonic', 'sigmoid'))}
    kinds = {'lr+sigmoid': cal['lr'], 'hgb+sigmoid': cal['hgb'],
             'stack': prefit_stack(cal, [0.45, 0.2, 0.5], 0.05)}
    frame = pd.DataFrame(random_rows(d.schema, 1000, seed=5), columns=d.schema.features)
    for kind in ('lr+sigmoid', 'hgb+sigmoid', 'stack'):
        assert additivity_error(kinds[kind], frame) < 1e-9, kind
    assert additivity_error(kinds['stack'], d.X.iloc[2000:4000]) < 1e-9          # other real customers


@pytest.fixture(scope='module')
def with_missing():
    "A numeric table with 15% missing values (scikit-learn trees learn where they go) and an interaction."
    rng = np.random.default_rng(5)
    X = rng.normal(size=(2000, 6)); X[rng.random(X.shape) < 0.15] = np.nan
    y = (np.nan_to_num(X[:, 0]) - np.nan_to_num(X[:, 1]) * (np.nan_to_num(X[:, 2]) > 0) + rng.normal(size=2000)
         > 0).astype(int)
    return X, y


@pytest.mark.parametrize('model', [RandomForestClassifier(n_estimators=8, min_samples_leaf=2, random_state=1, n_jobs=1),
                                   HistGradientBoostingClassifier(max_iter=40, random_state=1)],
                         ids=['random forest', 'hist gradient boosting'])
def test_equals_shap_tree_explainer(with_missing, model):
    shap = pytest.importorskip('shap')
    X, y = with_missing
    model.fit(X[:1500], y[:1500])
    Xt = X[1500:]
    assert np.isnan(Xt).any(axis=1).mean() > 0.5
    ex = shap.TreeExplainer(model, feature_perturbation='tree_path_dependent')
    sv = np.asarray(ex.shap_values(Xt))
    sv = sv[..., 1] if sv.ndim == 3 else sv
    base, phi = tree_shap(model, Xt)
    assert np.abs(phi - sv).max() < 1e-9
    assert abs(base - np.ravel(ex.expected_value)[-1]) < 1e-9
    margin = model.predict_proba(Xt)[:, 1] if isinstance(model, RandomForestClassifier) else model.decision_function(Xt)
    assert np.abs(base + phi.sum(axis=1) - margin).max() < 1e-12
