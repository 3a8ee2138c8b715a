"""The API against a live uvicorn server on 127.0.0.1: key, integrity, limits, validation, batch, card, metrics, reload."""
import json, threading, time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from api_fixtures import *  # noqa: F401,F403  (fixtures: fitted, model_dir)
from api_fixtures import API_KEY, example_row, fit_model, live_server, save_model
from bayespilot import decision
from bayespilot.config import DecisionSettings

H = {'X-API-Key': API_KEY}


@pytest.fixture(scope='module')
def server(tmp_path_factory, fitted):
    "One live server (1 worker, API key on) for the module: (base_url, folder, pipeline, schema, X)."
    d = tmp_path_factory.mktemp('api')
    pipe, schema, X = fitted
    save_model(pipe, schema, d/'deployed_pipeline.pkl')
    with live_server(d/'deployed_pipeline.pkl', d/'predictions.jsonl', api_key=API_KEY,
                     extra_env={'BAYESPILOT_SETTINGS_JSON': json.dumps({'serving': {'max_batch': 100, 'max_body_bytes': 60000}})}) as (base, _):
        yield base, d, pipe, schema, X


def test_key_required_everywhere_but_health(server):
    base = server[0]
    assert httpx.get(f'{base}/health').status_code == 200
    for path in ('/ready', '/model', '/metrics', '/docs', '/openapi.json'):
        r = httpx.get(f'{base}{path}', headers={'X-API-Key': 'wrong'})
        assert r.status_code == 401 and 'X-API-Key' in r.json()['detail'], path
    assert httpx.post(f'{base}/predict', json={}).status_code == 401
    assert httpx.get(f'{base}/ready', headers=H).status_code == 200


def test_predict_matches_the_artifact(server):
    base, _, pipe, schema, X = server
    body = example_row(X, 3) | {'customer_id': 'C-42'}
    r = httpx.post(f'{base}/predict', json=body, headers=H)
    assert r.status_code == 200, r.text
    j = r.json()
    expected = pipe.predict_proba(pd.DataFrame([body]))[0, 1]
    assert abs(j['churn_probability'] - expected) < 1e-9
    assert j['customer_id'] == 'C-42' and j['model_version'] == 'bayespilot-churn:3' and j['request_id']
    d = decision.decide(expected, body.get('clv'), DecisionSettings().model_copy(update={'review_threshold': .25, 'escalate_threshold': .5}))
    assert (j['tier'], j['action']) == (d['tier'], d['action'])
    assert j['ev_interval'][0] <= j['expected_value'] <= j['ev_interval'][1]


def test_unknown_field_and_nan_are_422(server):
    base = server[0]
    r = httpx.post(f'{base}/predict', json={'tenure_mnths': 3}, headers=H)
    assert r.status_code == 422 and 'tenure_mnths' in r.json()['message']
    for bad in (b'{"tenure_months": NaN}', b'{"tenure_months": Infinity}', b'{"tenure_months": 1e999}'):
        r = httpx.post(f'{base}/predict', content=bad, headers=H | {'content-type': 'application/json'})
        assert r.status_code == 422 and 'tenure_months' in r.json()['message'], bad
    r = httpx.post(f'{base}/predict', json={'tenure_months': 'abc'}, headers=H)
    assert r.status_code == 422 and 'tenure_months' in r.json()['message']
    assert httpx.post(f'{base}/predict', content=b'{not json', headers=H | {'content-type': 'application/json'}).status_code == 422
    assert httpx.post(f'{base}/predict', content=b'{}', headers=H | {'content-type': 'text/plain'}).status_code == 415


def test_missing_features_and_unseen_category(server):
    base = server[0]
    r = httpx.post(f'{base}/predict', json={'contract': 'ten-year', 'region': None}, headers=H)
    assert r.status_code == 200, r.text
    w = r.json()['warnings']
    assert any("contract: unseen category 'ten-year'" in x for x in w) and any('missing features imputed' in x for x in w)


def test_oversized_body_is_413(server):
    base = server[0]
    big = {'customers': [{'contract': 'x' * 150}] * 400}
    r = httpx.post(f'{base}/predict/batch', json=big, headers=H)
    assert r.status_code == 413 and 'max_body_bytes' in r.json()['detail']
    chunks = (b'{"customers": [' + b','.join([b'{"region": "north"}'] * 5000) + b']}',)
    r = httpx.post(f'{base}/predict/batch', content=(c for c in chunks), headers=H | {'content-type': 'application/json'})
    assert r.status_code == 413, 'a streamed (chunked) body without Content-Length is counted too'


def test_batch_with_capacities(server):
    base, _, pipe, _, X = server
    rows = [example_row(X, i) | {'customer_id': f'B{i}'} for i in range(60)]
    r = httpx.post(f'{base}/predict/batch', json={'customers': rows, 'capacities': {'review': 5, 'escalate': 3}}, headers=H)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j['n'] == 60 and j['actions']['review'] <= 5 and j['actions']['escalate'] <= 3
    p = pipe.predict_proba(pd.DataFrame(rows))[:, 1]
    np.testing.assert_allclose([x['churn_probability'] for x in j['predictions']], p, atol=1e-12)
    ds = DecisionSettings().model_copy(update={'review_threshold': .25, 'escalate_threshold': .5})
    ref = decision.decide_batch(p, [x.get('clv') for x in rows], ds, capacity={'review': 5, 'escalate': 3}, warn=False)
    assert [x['action'] for x in j['predictions']] == ref['action'].tolist()
    assert abs(j['total_expected_value'] - ref['expected_value'].sum()) < 1e-6
    too_many = httpx.post(f'{base}/predict/batch', json={'customers': [{}] * 101}, headers=H)
    assert too_many.status_code == 422 and 'customers' in too_many.json()['message']


def test_model_card(server):
    base, d, _, schema, _ = server
    j = httpx.get(f'{base}/model', headers=H).json()
    card = json.loads((d/'deployed_pipeline.json').read_text())
    assert j['sha256'] == card['sha256'] and j['registered_model']['version'] == 3
    assert j['thresholds']['review'] == 0.25 and j['policy']['escalate_threshold'] == 0.5
    assert j['policy_source'] == 'card.policy + card.thresholds'
    assert j['fast_path'] is True and 'compiled' in j['fast_path_reason']
    assert j['schema']['numeric'] == schema.numeric


def test_openapi_is_generated_from_the_schema(server):
    base, _, _, schema, X = server
    spec = httpx.get(f'{base}/openapi.json', headers=H).json()
    props = spec['components']['schemas']['PredictRequest']['properties']
    assert set(schema.features) <= set(props)
    assert props[schema.numeric[0]]['examples'] == [schema.numeric_stats[schema.numeric[0]]['median']]
    for c in schema.categorical:  # the example is a most frequent level of the training data
        counts = X[c].dropna().astype(str).value_counts()
        assert counts[props[c]['examples'][0]] == counts.max(), (c, props[c]['examples'], counts.head(3).to_dict())
    assert spec['paths']['/predict']['post']['responses']['200']['content']['application/json']['schema']['$ref'].endswith('PredictResponse')
    assert spec['paths']['/predict']['post']['requestBody']['content']['application/json']['schema']['$ref'].endswith('PredictRequest')


def test_metrics_count_requests_and_tiers(server):
    base = server[0]
    before = httpx.get(f'{base}/metrics', headers=H).text
    for _ in range(3): httpx.post(f'{base}/predict', json={}, headers=H)
    text = httpx.get(f'{base}/metrics', headers=H).text
    count = lambda t: sum(float(l.split()[-1]) for l in t.splitlines() if l.startswith('bayespilot_requests_total{endpoint="/predict",status="200"'))
    assert count(text) == count(before) + 3
    assert 'bayespilot_request_latency_seconds_bucket' in text and 'bayespilot_predictions_total{tier=' in text


def test_every_prediction_is_logged(server):
    base, d = server[:2]
    r = httpx.post(f'{base}/predict', json={'customer_id': 'LOG-1'}, headers=H | {'X-Request-ID': 'rid-log-1'})
    lines = [json.loads(l) for l in (d/'predictions.jsonl').read_text().splitlines()]
    rec = [x for x in lines if x['client_request_id'] == 'rid-log-1']
    assert rec[0]['request_id'] == r.json()['request_id'] == r.headers['x-request-id'] != 'rid-log-1'
    assert len(rec) == 1 and rec[0]['customer_id'] == 'LOG-1' and rec[0]['churn_probability'] == r.json()['churn_probability']
    assert rec[0]['latency_ms'] > 0 and rec[0]['model_sha256'] and set(rec[0]['features']) >= {'tenure_months', 'contract'}


def test_reload_swaps_model_without_dropping_requests(server):
    base, d = server[:2]
    old = httpx.get(f'{base}/model', headers=H).json()['sha256']
    assert httpx.post(f'{base}/admin/reload', headers={'X-API-Key': 'nope'}).status_code == 401
    statuses, stop = [], threading.Event()
    def hammer():
        with httpx.Client() as c:
            while not stop.is_set(): statuses.append(c.post(f'{base}/predict', json={'tenure_months': 5}, headers=H).status_code)
    t = threading.Thread(target=hammer); t.start()
    try:
        pipe2, schema2, _ = fit_model(n=1500, seed=9, C=0.1)
        save_model(pipe2, schema2, d/'deployed_pipeline.pkl')
        r = httpx.post(f'{base}/admin/reload', headers=H, timeout=60)
        assert r.status_code == 200 and r.json()['reloaded'] and r.json()['previous'] == old, r.text
        time.sleep(0.2)
    finally:
        stop.set(); t.join()
    assert statuses and set(statuses) == {200}
    new = httpx.get(f'{base}/model', headers=H).json()['sha256']
    assert new != old and new == json.loads((d/'deployed_pipeline.json').read_text())['sha256']
    # a tampered artifact is refused and the verified model keeps serving
    with open(d/'deployed_pipeline.pkl', 'ab') as f: f.write(b'tampered')
    r = httpx.post(f'{base}/admin/reload', headers=H, timeout=60)
    assert r.status_code == 409 and 'sha256' in r.json()['reason']
    assert httpx.get(f'{base}/ready', headers=H).json()['sha256'] == new


def test_tampered_artifact_is_not_ready(tmp_path, fitted):
    pipe, schema, _ = fitted
    save_model(pipe, schema, tmp_path/'deployed_pipeline.pkl')
    with open(tmp_path/'deployed_pipeline.pkl', 'ab') as f: f.write(b'\0')
    with live_server(tmp_path/'deployed_pipeline.pkl', tmp_path/'predictions.jsonl') as (base, _):
        r = httpx.get(f'{base}/ready')
        assert r.status_code == 503 and 'IntegrityError' in r.json()['reason'] and 'sha256' in r.json()['reason']
        assert httpx.post(f'{base}/predict', json={}).status_code == 503
        assert httpx.get(f'{base}/health').status_code == 200
        assert httpx.post(f'{base}/admin/reload').status_code == 403  # no key configured: reload disabled


def test_stage1_card_falls_back_to_settings_decision(tmp_path, fitted):
    from fastapi.testclient import TestClient
    from bayespilot.api import create_app
    from bayespilot.config import Settings
    pipe, schema, X = fitted
    save_model(pipe, schema, tmp_path/'churn_pipeline.pkl', stage2=False)
    s = Settings.model_validate({'serving': {'log_path': str(tmp_path/'p.jsonl')}})
    with TestClient(create_app(s, tmp_path/'churn_pipeline.pkl')) as c:
        j = c.get('/model').json()
        assert j['policy_source'].startswith('settings.decision') and j['model_version'].startswith('unregistered:')
        assert j['thresholds']['review'] == s.decision.review_threshold
        assert c.post('/predict', json=example_row(X, 1)).status_code == 200


TELCO = Path(__file__).resolve().parents[2]/'shared'/'data'/'telco_churn.csv'

@pytest.mark.skipif(not TELCO.is_file(), reason='Telco table not available')
def test_telco_model_serves_a_telco_shaped_api(tmp_path):
    from fastapi.testclient import TestClient
    from sklearn.linear_model import LogisticRegression
    from bayespilot.api import create_app
    from bayespilot.config import FeatureSettings, load_settings
    from bayespilot.data import load_dataset
    from bayespilot.features import make_pipeline
    s = load_settings(Path(__file__).resolve().parents[1]/'configs'/'telco.toml',
                      {'data.path': str(TELCO), 'serving.log_path': str(tmp_path/'p.jsonl')})
    ds = load_dataset(s.data)
    pipe = make_pipeline(ds.schema, FeatureSettings(), LogisticRegression(max_iter=1000)).fit(ds.X, ds.y)
    save_model(pipe, ds.schema, tmp_path/'telco.pkl', stage2=False, name='telco-lr')
    with TestClient(create_app(s, tmp_path/'telco.pkl')) as c:
        props = c.get('/openapi.json').json()['components']['schemas']['PredictRequest']['properties']
        assert {'tenure', 'Contract', 'PaymentMethod', 'MonthlyCharges'} <= set(props)
        row = {'customerID': '7590-VHVEG', 'tenure': 1, 'Contract': 'Month-to-month', 'PaymentMethod': 'Electronic check',
               'MonthlyCharges': 29.85, 'InternetService': 'DSL'}
        r = c.post('/predict', json=row)
        assert r.status_code == 200, r.text
        assert r.json()['customer_id'] == '7590-VHVEG'
        assert abs(r.json()['churn_probability'] - pipe.predict_proba(pd.DataFrame([row]))[0, 1]) < 1e-9
        assert c.get('/model').json()['fast_path'] is True
        assert c.post('/predict', json={'tenure_months': 3}).status_code == 422  # the synthetic schema's field is not Telco's


def test_reload_reaches_every_worker(tmp_path, fitted):
    pipe, schema, _ = fitted
    save_model(pipe, schema, tmp_path/'deployed_pipeline.pkl')
    with live_server(tmp_path/'deployed_pipeline.pkl', tmp_path/'predictions.jsonl', workers=2, api_key=API_KEY) as (base, _):
        old = httpx.get(f'{base}/ready', headers=H).json()['sha256']
        pipe2, schema2, _ = fit_model(n=1500, seed=5, C=0.3)
        new = save_model(pipe2, schema2, tmp_path/'deployed_pipeline.pkl')['sha256']
        r = httpx.post(f'{base}/admin/reload', headers=H, timeout=60)
        assert r.status_code == 200 and r.json()['sha256'] == new != old
        deadline, seen = time.monotonic() + 20, {}
        while time.monotonic() < deadline:
            # fresh connections spread over the workers; each answers with its pid and model
            j = [httpx.get(f'{base}/ready', headers=H).json() for _ in range(20)]
            seen = {(x['worker'], x['sha256']) for x in j}
            if len({p for p, _ in seen}) == 2 and {s for _, s in seen} == {new}: break
            time.sleep(0.3)
        assert len({p for p, _ in seen}) == 2, f'requests did not reach both workers: {seen}'
        assert {s for _, s in seen} == {new}, f'some worker still serves the old model: {seen}'
