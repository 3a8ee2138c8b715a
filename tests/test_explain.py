"""Reason codes end to end (issue 14): `/predict?explain=true` on a live uvicorn server (the reasons, their exact sum,
422 for a bad `top_k`, the reasons and audit fields in the log line), a model kind the explainer does not cover (in
process), and `bayespilot score --reasons` through the installed command."""
import json
import httpx
import numpy as np, pandas as pd
import pytest
from sklearn.linear_model import SGDClassifier

from bayespilot.artifacts import save_artifact
from bayespilot.features import make_pipeline
from bayespilot.synthetic import generate
from api_fixtures import example_row, fit_stack, live_server, save_model
from conftest import cli_env, run_cli


@pytest.fixture(scope='module')
def stack_world(tmp_path_factory):
    "A deployed stack (logistic regression + boosting, the kinds the default stack holds but the forest) and its rows."
    d = tmp_path_factory.mktemp('explain')
    stack, ds = fit_stack(2000, seed=3, max_iter=20, random_state=0)
    save_model(stack, ds.schema, d/'deployed_pipeline.pkl', name='fixture-stack')
    return d, stack, ds


def post(base, path, body):
    return httpx.post(base + path, json=body, timeout=30)


def test_predict_reasons_add_up_and_are_logged(stack_world):
    d, stack, ds = stack_world
    n_feat = len(ds.schema.features)
    rows = [example_row(ds.X, i) for i in range(3)]
    rows[1].pop('tenure_months', None); rows[2]['contract'] = 'never-seen'          # imputed and unseen too
    with live_server(d/'deployed_pipeline.pkl', d/'pred.jsonl') as (base, _):
        plain = post(base, '/predict', rows[0]).json()
        assert 'reasons' not in plain and 'base_value' not in plain                   # off by default
        four = post(base, '/predict?explain=true', rows[0]).json()
        assert [sorted(r) for r in four['reasons']] == [['contribution', 'feature', 'text', 'value']] * 4
        sizes = [abs(r['contribution']) for r in four['reasons']]
        assert sizes == sorted(sizes, reverse=True) and four['churn_probability'] == plain['churn_probability']
        assert four['reasons'][0]['text'].startswith(f"{four['reasons'][0]['feature']} = ")
        for row in rows:                                                              # top_k >= features: exact sum
            j = post(base, f'/predict?explain=true&top_k={n_feat}', row).json()
            p = stack.predict_proba(pd.DataFrame([row], columns=ds.schema.features))[0, 1]
            assert abs(j['churn_probability'] - p) < 1e-9
            assert abs(j['base_value'] + sum(r['contribution'] for r in j['reasons']) - j['churn_probability']) < 1e-9
        assert {r['feature']: r['value'] for r in j['reasons']}['contract'] == 'never-seen'
        for bad in ('-1', '2.5', 'four'):
            r = post(base, f'/predict?explain=true&top_k={bad}', rows[0])
            assert r.status_code == 422 and r.json()['message'].startswith('top_k:'), r.text
        assert post(base, '/predict?explain=perhaps', rows[0]).json()['message'].startswith('explain:')
        batch = post(base, '/predict/batch?explain=true&top_k=2', {'customers': rows}).json()['predictions']
        assert [len(b['reasons']) for b in batch] == [2, 2, 2]
        for b, row in zip(batch, rows):                                               # the same as one by one
            one = post(base, '/predict?explain=true&top_k=2', row).json()['reasons']
            assert [x['feature'] for x in b['reasons']] == [x['feature'] for x in one]
            assert np.allclose([x['contribution'] for x in b['reasons']], [x['contribution'] for x in one], atol=1e-12)
    log = [json.loads(l) for l in (d/'pred.jsonl').read_text().splitlines()]
    assert len(log) == 1 + 1 + 3 + 3 + 3                                              # 422s are not logged
    assert 'reasons' not in log[0] and log[1]['reasons'] == four['reasons'] and log[1]['base_value'] == four['base_value']
    assert [l['endpoint'] for l in log[5:8]] == ['/predict/batch'] * 3 and len(log[5]['reasons']) == 2
    for line in log:                                                                  # the decision's audit fields too
        assert line['policy_version'] and line['audit'] and line['action'] in ('monitor', 'review', 'escalate')


def test_model_not_covered_still_answers(tmp_path, stack_world, monkeypatch):
    _, _, ds = stack_world
    sgd = make_pipeline(ds.schema, None, SGDClassifier(loss='log_loss', random_state=0)).fit(ds.X, ds.y)
    save_model(sgd, ds.schema, tmp_path/'deployed_pipeline.pkl', name='fixture-sgd')
    from fastapi.testclient import TestClient                                         # in process: quicker
    from bayespilot.api import create_app
    from bayespilot.config import Settings
    monkeypatch.delenv('BAYESPILOT_API_KEY', raising=False); monkeypatch.delenv('BAYESPILOT_METRICS_DIR', raising=False)
    app = create_app(Settings(serving={'log_path': str(tmp_path/'pred.jsonl')}), tmp_path/'deployed_pipeline.pkl')
    with TestClient(app) as c:
        r = c.post('/predict?explain=true', json=example_row(ds.X, 0))
        assert r.status_code == 200 and 'reasons' not in r.json()
        assert any(w.startswith('reasons not available: this model kind is not covered') for w in r.json()['warnings'])
        info = c.get('/model').json()
        assert info['reasons'] is False and 'SGDClassifier' in info['reasons_reason']


def score(d, *args):
    "Run `bayespilot score` in `d` without MLflow."
    return run_cli('score', '--model', d/'deployed_pipeline.pkl', '--reports-dir', d/'reports', '--quiet', '--no-mlflow',
                   *args, cwd=d, env=cli_env())


def test_score_reasons_end_to_end(stack_world, capsys):
    d, stack, ds = stack_world
    base = generate(1500, seed=8)[0].drop(columns='churned')
    base.to_csv(d/'base.csv', index=False)
    r = score(d, '--data', d/'base.csv', '--out', d/'why.csv', '--reasons', 'all', '--top-k', '3', '--chunk-rows', '400')
    assert r.returncode == 0 and 'reasons: top 3 for 1,500 customers (all)' in r.stdout, r.stderr
    got = pd.read_csv(d/'why.csv')
    assert [c for c in got.columns if c.startswith('reason_')] == [
        f'reason_{i}{s}' for i in (1, 2, 3) for s in ('', '_feature', '_contribution')]
    assert got.reason_1.str.fullmatch(r'[a-z_]+=.+:[+-][0-9.]+').all()
    assert (got.reason_1.str.split('=').str[0] == got.reason_1_feature).all()
    assert (got.reason_1_contribution.abs() >= got.reason_2_contribution.abs()).all()
    n = len(ds.schema.features)
    from bayespilot.cli import main                                                   # the rest in process (quicker)
    common = ['score', '--model', str(d/'deployed_pipeline.pkl'), '--data', str(d/'base.csv'), '--quiet', '--no-mlflow',
              '--reports-dir', str(d/'reports')]
    assert main([*common, '--out', str(d/'all.parquet'), '--reasons', 'all', '--top-k', str(n + 5)]) == 0
    full = pd.read_parquet(d/'all.parquet')
    total = full.base_value + full[[f'reason_{i}_contribution' for i in range(1, n + 1)]].fillna(0).sum(axis=1)
    assert np.abs(total - full.churn_probability).max() < 1e-9
    assert full.reason_1_feature.tolist() == got.reason_1_feature.tolist()             # chunking changes nothing
    capsys.readouterr()
    for bad, msg in ((['--reasons', '--top-k', '-1'], 'top_k'), (['--top-k', '2'], '--top-k needs --reasons')):
        assert main([*common, '--out', str(d/'bad.csv'), *bad]) == 2
        err = capsys.readouterr().err
        assert msg in err and not (d/'bad.csv').exists(), err
