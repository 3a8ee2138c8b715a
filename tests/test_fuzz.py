"""Fuzzing from the OpenAPI schema (hypothesis): whatever the body, the API answers 2xx or 4xx with JSON, never 5xx.

Bodies are drawn from the live `/openapi.json` of the app: every documented property with values of the right
type, of the wrong type, extreme numbers, NaN/Infinity literals, long and odd strings; unknown keys; wrong
top-level types; broken JSON bytes. The app runs in-process (FastAPI TestClient) with the real lifespan.
"""
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from api_fixtures import *  # noqa: F401,F403  (fixtures: fitted, model_dir)
from api_fixtures import save_model

ALLOWED = {200, 401, 413, 422}


@pytest.fixture(scope='module')
def client(tmp_path_factory, fitted):
    "In-process client of the app with the fixture model and small limits."
    from fastapi.testclient import TestClient
    from bayespilot.api import create_app
    from bayespilot.config import Settings
    d = tmp_path_factory.mktemp('fuzz')
    pipe, schema, _ = fitted
    save_model(pipe, schema, d/'deployed_pipeline.pkl')
    s = Settings.model_validate({'serving': {'log_path': str(d/'p.jsonl'), 'max_batch': 20, 'max_body_bytes': 50_000}})
    with TestClient(create_app(s, d/'deployed_pipeline.pkl'), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope='module')
def spec(client):
    return client.get('/openapi.json').json()


def _resolve(spec, ref_or_schema):
    "Follow a `$ref` into components."
    s = ref_or_schema
    while '$ref' in s: s = spec['components']['schemas'][s['$ref'].rsplit('/', 1)[1]]
    return s


ANY_JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats(allow_nan=False, allow_infinity=False)
                        | st.text(max_size=30), lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                        max_leaves=10)
ODD_TEXT = st.sampled_from(['', ' ', '?', 'NaN', 'null', '\x00', 'é' * 50, 'x' * 300, '1e999', '-0', '🙂', 'DROP TABLE'])


def _value(prop: dict):
    "Values for one property: mostly of its type (incl. edge cases), sometimes anything."
    kinds = {t.get('type') for t in prop.get('anyOf', [prop])}
    typed = st.none()
    if 'number' in kinds: typed = typed | st.floats(allow_nan=False, allow_infinity=False) | st.integers(-10**20, 10**20) | st.just(1e308)
    if 'integer' in kinds: typed = typed | st.integers(-10**20, 10**20)
    if 'string' in kinds:
        known = prop.get('x-known-values') or prop.get('examples') or []
        typed = typed | st.text(max_size=40) | ODD_TEXT | (st.sampled_from(known) if known else st.nothing())
    return st.one_of(typed, typed, ANY_JSON)


def _object(spec, schema, depth=0):
    "Objects for a schema: a random subset of its properties, sometimes with unknown keys."
    schema = _resolve(spec, schema)
    props = schema.get('properties', {})
    fields = {}
    for name, prop in props.items():
        prop = _resolve(spec, prop)
        if prop.get('type') == 'array' and depth < 1:
            item = _object(spec, prop['items'], depth + 1)
            fields[name] = st.lists(item, max_size=25) | ANY_JSON
        elif any('$ref' in p for p in prop.get('anyOf', [])) and depth < 1:
            ref = next(p for p in prop['anyOf'] if '$ref' in p)
            fields[name] = st.none() | _object(spec, ref, depth + 1) | ANY_JSON
        else: fields[name] = _value(prop)
    base = st.fixed_dictionaries({}, optional=fields) if fields else st.just({})
    extra = st.dictionaries(st.text(min_size=1, max_size=12), ANY_JSON, max_size=2)
    return st.one_of(base, base, st.tuples(base, extra).map(lambda t: {**t[0], **t[1]}))


def _bodies(spec, path):
    "JSON-encoded bodies for the request body of `path`, plus raw oddities."
    schema = spec['paths'][path]['post']['requestBody']['content']['application/json']['schema']
    as_json = _object(spec, schema).map(lambda o: json.dumps(o).encode()) | ANY_JSON.map(lambda o: json.dumps(o).encode())
    raw = st.binary(max_size=200) | st.sampled_from([b'', b'{', b'{"a": NaN}', b'[1, 2', b'{"customers": [{}]*3}', b'\xff\xfe'])
    nan_literals = _object(spec, schema).map(lambda o: json.dumps(o).replace('0.5', 'NaN').replace('1.0', 'Infinity').encode())
    return st.one_of(as_json, as_json, as_json, raw, nan_literals)


def _check(client, path, body):
    r = client.post(path, content=body, headers={'content-type': 'application/json'})
    assert r.status_code in ALLOWED, (path, body[:300], r.status_code, r.text[:300])
    r.json()  # always JSON
    return r


def test_fuzz_predict(client, spec):
    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(_bodies(spec, '/predict'))
    def run(body): _check(client, '/predict', body)
    run()


def test_fuzz_predict_batch(client, spec):
    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(_bodies(spec, '/predict/batch'))
    def run(body): _check(client, '/predict/batch', body)
    run()


def test_fuzz_finds_valid_requests_too(client, spec):
    "The generator is not only noise: a share of generated /predict bodies are accepted."
    seen = []
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(_object(spec, spec['paths']['/predict']['post']['requestBody']['content']['application/json']['schema']))
    def run(obj): seen.append(_check(client, '/predict', json.dumps(obj).encode()).status_code)
    run()
    assert seen.count(200) >= 5 and seen.count(422) >= 5, (seen.count(200), seen.count(422))
