"""`bayespilot score` end to end: CSV and Parquet in chunks, global capacities equal to `decide_batch` on the whole
table, the same numbers as `POST /predict`, and bad input refused with one message, exit 2 and no output file."""
import json
import numpy as np, pandas as pd
import pytest

from bayespilot.artifacts import save_artifact
from bayespilot.data import read_table
from bayespilot.decision import decide_batch
from bayespilot.synthetic import generate
from api_fixtures import fit_stack
from conftest import cli_env, run_cli


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    "A deployed stack (logistic regression + boosting) and a 4 000-customer base as CSV and Parquet."
    d = tmp_path_factory.mktemp('score')
    stack, ds = fit_stack(3000, seed=1, max_iter=30)
    save_artifact(stack, d/'deployed_pipeline.pkl', {'schema': ds.schema.to_dict(),
                                                    'thresholds': {'review': 0.3, 'escalate': 0.6},
                                                    'registered_model': {'name': 'bayespilot-churn', 'version': 7}})
    generate(4000, seed=9)[0].drop(columns='churned').to_csv(d/'base.csv', index=False)
    base = read_table(d/'base.csv')          # what the file holds: '?' and blanks read as missing, as in training
    base.to_parquet(d/'base.parquet')
    return d, stack, ds.schema, base


def score(d, *args):
    "Run `bayespilot score` in `d` with its own MLflow store."
    return run_cli('score', '--model', d/'deployed_pipeline.pkl', '--reports-dir', d/'reports', '--quiet', *args,
                   cwd=d, env=cli_env(MLFLOW_TRACKING_URI=f"sqlite:///{d/'mlflow.db'}"))


def test_csv_and_parquet_with_global_capacity(world):
    d, stack, schema, base = world
    caps = ['--capacity', 'review=150,escalate=40', '--chunk-rows', '700']
    r1 = score(d, '--data', d/'base.csv', '--out', d/'cap_csv.parquet', *caps)
    from bayespilot.cli import main       # the Parquet run in process (the CSV one ran the installed command)
    assert r1.returncode == 0, r1.stderr
    assert main(['score', '--model', str(d/'deployed_pipeline.pkl'), '--data', str(d/'base.parquet'), '--quiet',
                 '--out', str(d/'cap_pq.csv'), '--no-mlflow', *caps]) == 0
    assert 'scored 4,000 customers' in r1.stdout and 'review 150' in r1.stdout, r1.stdout
    a, b = pd.read_parquet(d/'cap_csv.parquet'), pd.read_csv(d/'cap_pq.csv')
    p = stack.predict_proba(base[schema.features])[:, 1]
    ref = decide_batch(p, base["clv"], stack_policy(d), warn=False, capacity={'review': 150, 'escalate': 40})
    for got in (a, b):
        assert np.abs(got['churn_probability'].to_numpy() - p).max() < 1e-12
        assert got['action'].astype(str).tolist() == ref['action'].astype(str).tolist()   # the whole-table allocation
        assert got['expected_value'].sum() == pytest.approx(ref['expected_value'].sum(), rel=1e-12)
        assert got['customer_id'].tolist() == base['customer_id'].tolist()
        assert (got['model_version'] == 'bayespilot-churn:7').all() and got['policy_version'].str.startswith('policy:').all()
    assert (a['action'] == 'review').sum() == 150 and (a['action'] == 'escalate').sum() == 40
    assert a['warnings'].str.contains('missing features imputed', na=False).any()
    summary = json.loads((d/'reports'/'score'/'cap_csv_summary.json').read_text())
    assert summary['counts']['review'] == 150 and summary['rows'] == 4000 and summary['mlflow_run_id']


def stack_policy(d):
    "The decision policy the deployed card implies (what the API and `score` use)."
    from bayespilot.config import Settings
    from bayespilot.model_store import load_model
    return load_model(d/'deployed_pipeline.pkl', Settings()).decision


def test_same_numbers_as_predict(world, tmp_path):
    d, _, schema, base = world
    from bayespilot.cli import main
    assert main(['score', '--model', str(d/'deployed_pipeline.pkl'), '--data', str(d/'base.parquet'), '--quiet',
                 '--out', str(d/'plain.parquet'), '--no-mlflow', '--chunk-rows', '1000']) == 0
    got = pd.read_parquet(d/'plain.parquet')
    from fastapi.testclient import TestClient
    from bayespilot.api import create_app
    from bayespilot.config import Settings
    s = Settings.model_validate({'serving': {'log_path': str(tmp_path/'p.jsonl')}})
    with TestClient(create_app(s, d/'deployed_pipeline.pkl')) as c:
        for i in range(0, 4000, 97):
            row = {k: v for k, v in base.iloc[i][schema.features + ['customer_id', 'clv']].items() if pd.notna(v)}
            row = {k: float(v) if k in schema.numeric or k == 'clv' else str(v) for k, v in row.items()}
            j = c.post('/predict', json=row).json()
            assert abs(j['churn_probability'] - got['churn_probability'][i]) < 1e-12, (i, j)
            assert j['action'] == got['action'][i] and j['tier'] == got['tier'][i]
            assert j['expected_value'] == pytest.approx(got['expected_value'][i], abs=1e-9)
            assert j['ev_interval'] == pytest.approx([got['ev_lo'][i], got['ev_hi'][i]], abs=1e-9)
            w = got['warnings'][i] if isinstance(got['warnings'][i], str) else ''
            assert sorted(j['warnings']) == sorted(x for x in w.split('; ') if x)


@pytest.mark.parametrize('case', ['missing column', 'other schema', 'unreadable row', 'bad capacity', 'output exists'])
def test_bad_input(world, case, capsys):
    d, _, _, base = world
    out, extra = d/f'bad_{case.replace(" ", "_")}.parquet', []
    data = d/f'{case.replace(" ", "_")}.csv'
    if case == 'missing column': base.drop(columns='plan').to_csv(data, index=False); want = "missing column 'plan'"
    elif case == 'other schema': pd.DataFrame({'a': [1], 'b': [2]}).to_csv(data, index=False); want = "not in the model's schema"
    elif case == 'unreadable row':
        text = (d/'base.csv').read_text().splitlines()
        text[1234] = text[1234].replace(',', ',,', 1)
        data.write_text('\n'.join(text) + '\n'); want = 'line 1235'
    elif case == 'bad capacity': data, extra, want = d/'base.csv', ['--capacity', 'review=-3'], 'whole number >= 0'
    else: data, out, want = d/'base.csv', d/'taken.csv', '--overwrite'; out.write_text('keep me')
    from bayespilot.cli import main       # in process: the message and exit code are main()'s
    code = main(['score', '--model', str(d/'deployed_pipeline.pkl'), '--data', str(data), '--out', str(out), '--quiet',
                 '--no-mlflow', '--chunk-rows', '500', *extra])
    err = capsys.readouterr().err
    assert code == 2, (code, err)
    assert want in err and err.count('error:') == 1, err
    if case == 'output exists': assert out.read_text() == 'keep me'
    else: assert not out.exists()
    assert not [p for p in d.iterdir() if p.name.startswith('.')], 'a temporary file was left behind'


def test_reasons_of_the_call_list(world):
    """`--reasons` explains the call list after the global allocation (policy_action not monitor: the contacted and
    the held-out would-be-contacted), `--reasons all` every row; the same reasons on the call list, no decision
    changed (nor by `--threads 1`)."""
    d, _, _, _ = world
    (d/'held.toml').write_text('[decision]\nholdout_share = 0.2\n')
    from bayespilot.cli import main
    args = ['score', '--model', str(d/'deployed_pipeline.pkl'), '--data', str(d/'base.parquet'), '--quiet',
            '--no-mlflow', '--chunk-rows', '900', '--capacity', 'review=150,escalate=40', '--config', str(d/'held.toml'),
            '--top-k', '3', '--reports-dir', str(d/'reports')]
    assert main([*args, '--out', str(d/'why_calls.parquet'), '--reasons']) == 0
    assert main([*args, '--out', str(d/'why_all.csv'), '--reasons', 'all', '--threads', '1']) == 0
    calls, every = pd.read_parquet(d/'why_calls.parquet'), pd.read_csv(d/'why_all.csv')
    on = calls['policy_action'] != 'monitor'
    assert ((calls['action'] == 'review').sum(), (calls['action'] == 'escalate').sum()) == (150, 40)
    assert on.sum() > 190 and calls['holdout'][on].any() and not calls['holdout'][~on].any()   # held out: on the list
    assert calls['has_reasons'].tolist() == on.tolist() and every['has_reasons'].all()
    assert calls['reason_1'][~on].isna().all() and calls['reason_3'][on].notna().all()
    cols = [f'reason_{i}{s}' for i in (1, 2, 3) for s in ('', '_feature')]
    assert calls.loc[on, cols].reset_index(drop=True).equals(every.loc[on, cols].reset_index(drop=True))
    assert np.abs(calls.loc[on, 'reason_1_contribution'] - every.loc[on, 'reason_1_contribution']).max() < 1e-9
    assert calls['action'].tolist() == every['action'].tolist()
    summary = json.loads((d/'reports'/'score'/'why_calls_summary.json').read_text())
    assert (summary['reasons'], summary['reasons_for'], summary['rows_with_reasons']) == (3, 'contacted', on.sum())
