"""`bayespilot monitor` end to end: a small model with its reference profile, prediction logs of the same and of a
drifted population (rotated and gzip-compressed files included), the exit codes 0 / 3 / 2, nothing half-written on
bad input, and the live signals of `/metrics` and `/model`."""
import contextlib, gzip, io, json, shutil, subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from bayespilot.artifacts import save_artifact
from bayespilot.cli import main
from bayespilot.config import DataSettings, DecisionSettings, FeatureSettings, MonitoringSettings
from bayespilot.data import prepare, write_table
from bayespilot.decision import decide_batch
from bayespilot.features import make_pipeline
from bayespilot.monitoring import PredictionLog, prediction_record
from bayespilot.reference import build_reference
from bayespilot.synthetic import generate
from conftest import run_cli

VERSION = 'bayespilot-churn:3'
DS = DecisionSettings()


def write_log(pipe, features, path, n, seed, drift=False, version=VERSION, max_bytes=50_000_000):
    "n predictions of generated customers as the API logs them, one per 10 seconds from 2026-12-01T08:00Z."
    table, _ = generate(n, seed=seed, drift=drift)
    d = prepare(table, DataSettings())
    p = pipe.predict_proba(d.X)[:, 1]
    dec = decide_batch(p, d.value.to_numpy(), DS, warn=False)
    t0 = pd.Timestamp('2026-12-01T08:00Z')
    log = PredictionLog(path, max_bytes=max_bytes)
    rows = table[features].astype(object).where(table[features].notna(), None).to_dict('records')
    for start in range(0, n, 500):
        log.write_many(prediction_record(request_id=str(i), features=rows[i], churn_probability=p[i],
                                         tier=str(dec.tier[i]), action=str(dec.action[i]),
                                         expected_value=float(dec.expected_value[i]), model_version=version,
                                         ts=(t0 + pd.Timedelta(seconds=10 * i)).to_pydatetime())
                       for i in range(start, min(start + 500, n)))
    return path


@pytest.fixture(scope='module')
def project(tmp_path_factory):
    "A folder with a deployed model (reference profile in its card), a base log (rotated, oldest file gzipped) and a drifted one."
    root = tmp_path_factory.mktemp('monitor')
    table, _ = generate(4000, seed=1)
    d = prepare(table, DataSettings())
    pipe = make_pipeline(d.schema, FeatureSettings(), LogisticRegression(max_iter=1000)).fit(d.X[:3000], d.y[:3000])
    p = pipe.predict_proba(d.X[3000:])[:, 1]
    ref = build_reference(d.schema, d.X[:3000], p, d.y[3000:], d.value.to_numpy()[3000:], DS, MonitoringSettings())
    model = root/'models'/'artifacts'/'deployed_pipeline.pkl'
    save_artifact(pipe, model, {'name': 'deployed_pipeline', 'schema': d.schema.to_dict(),
                                'policy': DS.model_dump(mode='json'), 'reference': ref,
                                'registered_model': {'name': 'bayespilot-churn', 'version': 3, 'alias': 'champion'}})
    feats = d.schema.features
    base = write_log(pipe, feats, root/'logs'/'base'/'predictions.jsonl', 2500, seed=11, max_bytes=600_000)
    rotated = sorted(base.parent.glob('predictions.jsonl.*[0-9]'))
    assert rotated, 'the base log should have rotated'
    with open(rotated[0], 'rb') as f, gzip.open(f'{rotated[0]}.gz', 'wb') as g: shutil.copyfileobj(f, g)
    rotated[0].unlink()
    drifted = write_log(pipe, feats, root/'logs'/'drift'/'predictions.jsonl', 2500, seed=12, drift=True)
    return {'root': root, 'model': model, 'base': base, 'drifted': drifted, 'pipe': pipe, 'features': feats, 'X': d.X}


def monitor(project, *args, process=False):
    """`bayespilot monitor --model M ARGS` in the project folder (reports under reports/): in a new process with
    `process`, else through `cli.main` in this one (same code, no interpreter start-up)."""
    argv = ['monitor', '--model', project['model'], '--quiet', *args]
    if process: return run_cli(*argv, cwd=project['root'])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(project['root']), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def summary(project, name):
    return json.loads((project['root']/'reports'/'monitoring'/name/'summary.json').read_text())


def test_same_population_exits_0_with_a_full_report(project):
    r = monitor(project, '--log', project['base'], '--name', 'base', process=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('monitoring 2,500 customers (log): OK'), r.stdout
    folder = project['root']/'reports'/'monitoring'/'base'
    assert sorted(p.name for p in folder.iterdir()) == ['feature_drift.png', 'probability.png', 'profit_over_time.png',
                                                       'report.html', 'report.md', 'summary.json']
    s = summary(project, 'base')
    assert s['verdict'] == 'ok' and s['drifted_features'] == [] and s['alerts'] == []
    assert any(f.endswith('.gz') for f in s['window']['files']) and len(s['window']['files']) >= 3
    assert s['window']['lines_read'] == 2500 and s['model']['version'] == VERSION
    assert abs(s['money']['change_per_customer']) < 0.2
    page = (folder/'report.html').read_text()
    assert page.count('src="data:image/png;base64,') == 3 and '.png"' not in page      # self-contained


def test_drifted_population_exits_3_and_names_the_features(project):
    r = monitor(project, '--log', project['drifted'], '--name', 'drifted', process=True)
    assert r.returncode == 3, r.stderr
    assert 'alert: features:' in r.stderr and 'monthly_charges' in r.stderr
    s = summary(project, 'drifted')
    assert {'monthly_charges', 'total_charges', 'contract', 'days_since_last_login'} <= set(s['drifted_features'])
    assert not {'plan', 'region', 'num_products'} & set(s['drifted_features'])
    assert s['verdict'] == 'alert'


def test_window_selection(project):
    r = monitor(project, '--log', project['base'], '--last', 300, '--name', 'last300')
    assert r.returncode == 0, r.stderr
    assert summary(project, 'last300')['rows'] == 300
    r = monitor(project, '--log', project['base'], '--since', '2026-12-01T09:00', '--until', '2026-12-01T10:00Z',
                '--name', 'hour')
    assert r.returncode == 0, r.stderr
    s = summary(project, 'hour')
    assert s['rows'] == 360 and [b['time'] for b in s['money_over_time']] == ['2026-12-01T09']


def bad_inputs(project):
    "(name, extra flags) of inputs that must be refused, built in the project folder."
    root = project['root']
    torn = root/'logs'/'torn.jsonl'
    torn.write_bytes(project['base'].read_bytes() + b'{"ts": "2026-12-01T12:00:00.000Z", "churn_probab')
    mixed = root/'logs'/'mixed'/'predictions.jsonl'
    write_log(project['pipe'], project['features'], mixed, 100, seed=13)
    write_log(project['pipe'], project['features'], mixed, 100, seed=14, version='bayespilot-churn:4')
    short = write_table(generate(100, seed=15)[0].drop(columns=['contract']), root/'short.csv')
    return {'torn last line': (['--log', torn], 'the last line is incomplete'),
            'several model versions': (['--log', mixed], "2 model versions"),
            'empty window': (['--log', project['base'], '--since', '2027-01-01'], 'no prediction lines in the window'),
            'unknown --since format': (['--log', project['base'], '--since', 'last week'], 'unknown time format'),
            'table missing a feature': (['--data', short], "lacks the feature(s) ['contract']")}


def test_bad_input_exits_2_and_writes_nothing(project):
    out = project['root']/'reports'/'monitoring'
    for name, (flags, message) in bad_inputs(project).items():
        before = sorted(p.name for p in out.iterdir()) if out.exists() else []
        r = monitor(project, *flags, '--name', 'bad')
        assert r.returncode == 2, (name, r.returncode, r.stderr)
        assert r.stderr.startswith('error: ') and message in r.stderr, (name, r.stderr)
        assert (sorted(p.name for p in out.iterdir()) if out.exists() else []) == before, name


def test_mixed_versions_with_a_choice(project):
    r = monitor(project, '--log', project['root']/'logs'/'mixed'/'predictions.jsonl', '--model-version', VERSION,
                '--name', 'mixed3')
    assert r.returncode in (0, 3), r.stderr
    assert summary(project, 'mixed3')['rows'] == 100


def test_live_signals_and_reference_summary(project, tmp_path):
    from fastapi.testclient import TestClient
    from bayespilot.api import create_app
    from bayespilot.config import Settings
    s = Settings.model_validate({'serving': {'log_path': str(tmp_path/'p.jsonl')}})
    X = project['X']
    rows = [{k: (None if pd.isna(v) else v) for k, v in X.iloc[i].to_dict().items()} for i in range(5)]
    with TestClient(create_app(s, project['model'])) as c:
        ref = c.get('/model').json()['reference']
        assert ref['rows'] == {'features': 3000, 'held_out': 1000} and ref['features'] == len(project['features'])
        assert 0.6 < ref['roc_auc']['realised'] < 0.95 and set(ref['actions']) == {'monitor', 'review', 'escalate'}
        for row in rows[:3]: assert c.post('/predict', json=row).status_code == 200
        assert c.post('/predict/batch', json={'customers': rows[3:]}).status_code == 200
        text = c.get('/metrics').text
    assert f'bayespilot_churn_probability_count{{model_version="{VERSION}"}} 5\n' in text
    acts = [l for l in text.splitlines() if l.startswith(f'bayespilot_actions_total{{model_version="{VERSION}"')]
    assert sum(float(l.split()[-1]) for l in acts) == 5


def test_extra_fields_and_odd_types_read_as_the_plain_log(project):
    """Lines grown with the fields other features add (holdout, policy, audit, reasons) and lines whose feature types
    change (numbers as text: the exact orjson path for those blocks) give the same window as the plain log."""
    import orjson
    from bayespilot.log_window import read_window
    plain = project['root']/'logs'/'drift'/'predictions.jsonl'
    grown = project['root']/'logs'/'grown'/'predictions.jsonl'; grown.parent.mkdir()
    out = []
    for i, line in enumerate(plain.read_bytes().splitlines()):
        r = orjson.loads(line) | {'holdout': i % 7 == 0, 'policy_version': 3, 'policy_action': 'review',
                                  'audit': {'by': 'api', 'tags': ['a', {'b': [1, 2]}]}, 'reasons': [['tenure', -0.2]]}
        if i % 400 == 17: r['features']['tenure_months'] = str(r['features']['tenure_months'])
        out.append(orjson.dumps(r) + b'\n')
    grown.write_bytes(b''.join(out))
    num = [c for c in project['features'] if c in ('tenure_months', 'monthly_charges', 'usage_trend')]
    cat = ['contract', 'plan', 'region']
    a, b = (read_window(p, num, cat, block=200_000)[0] for p in (plain, grown))
    assert len(a) == len(b) == 2500
    assert np.array_equal(a.p, b.p) and np.array_equal(a.actions, b.actions) and a.categorical == b.categorical
    for c in num: assert np.array_equal(a.numeric[c], b.numeric[c], equal_nan=True), c
    r = monitor(project, '--log', grown, '--name', 'grown')
    assert r.returncode == 3, r.stderr
    assert {'monthly_charges', 'total_charges', 'contract'} <= set(summary(project, 'grown')['drifted_features'])
