"`bayespilot train-stage2` end to end on the Telco table: artifacts, reports, selected_model.json, registry alias, deployed model."
import hashlib, json
from pathlib import Path
import numpy as np, pandas as pd
import pytest
from conftest import cli_env, run_cli

from bayespilot.config import CANDIDATES
TELCO = ('--data', '../shared/data/telco_churn.csv', '--target', 'Churn', '--positive', 'Yes', '--id', 'customerID')


@pytest.fixture(scope='module')
def telco_run(tmp_path_factory, shared_data):
    "A scratch folder (with ../shared beside it) where `bayespilot train-stage2` ran on Telco with its own sqlite store."
    root = tmp_path_factory.mktemp('stage2')
    (root/'shared').symlink_to(shared_data.parent, target_is_directory=True)
    work = root/'work'; work.mkdir()
    uri = f"sqlite:///{root/'mlflow.db'}"
    r = run_cli('train-stage2', *TELCO, '--tracking-uri', uri, cwd=work, timeout=300)
    assert r.returncode == 0, r.stderr
    return work, uri, r


def selected(work: Path) -> dict:
    return json.loads((work/'reports'/'stage2'/'selected_model.json').read_text())


def test_every_candidate_and_the_deployed_pipeline_are_saved_with_cards(telco_run):
    work, _, _ = telco_run
    art = work/'models'/'artifacts'
    for name in (*[f'{c}_pipeline' for c in CANDIDATES], 'deployed_pipeline'):
        card = json.loads((art/f'{name}.json').read_text())
        assert card['sha256'] == hashlib.sha256((art/f'{name}.pkl').read_bytes()).hexdigest(), name
        assert card['schema']['target'] == 'Churn' and 'customerID' not in card['schema']['categorical']
        assert card['mlflow_run_id'] and card['metrics']['roc_auc'] > 0.75
    deployed = json.loads((art/'deployed_pipeline.json').read_text())
    assert {'review', 'escalate', 'method'} <= set(deployed['thresholds']) and deployed['policy']['policy'] == 'expected_value'
    assert deployed['registered_model'] == selected(work)['registered_model']


def test_reports_compare_raw_and_calibrated_candidates(telco_run):
    work, _, _ = telco_run
    rep = work/'reports'/'stage2'
    comp = pd.read_csv(rep/'comparison.csv')
    assert sorted(zip(comp.candidate, comp.variant)) == sorted([(c, v) for c in CANDIDATES for v in ('raw', 'calibrated')] + [('stack', 'calibrated')])
    assert 'bayes_optimal' not in set(comp.candidate)               # no truth file for a real table
    for col in ('roc_auc', 'pr_auc', 'log_loss', 'brier', 'ece', 'lift_at_10', 'fit_seconds', 'predict_ms_per_1000', 'mpc', 'empc'):
        assert comp[col].notna().all(), col
    assert comp.selected.sum() == 1
    chosen = comp[comp.selected].iloc[0]
    assert chosen.variant == 'calibrated' and chosen.candidate == selected(work)['model']
    assert '| candidate | variant |' in (rep/'comparison.md').read_text()
    th = pd.read_csv(rep/'thresholds.csv')
    assert len(th) == 99 and th.threshold.iloc[0] == 0.01 and th.threshold.iloc[-1] == 0.99
    for png in ('roc_pr.png', 'thresholds.png', *[f'reliability_{c}.png' for c in (*CANDIDATES, 'stack')]):
        assert (rep/png).stat().st_size > 5000, png
    policies = pd.read_csv(work/'reports'/'decision'/'policy_report.csv', index_col=0)
    assert set(policies.index) == {'tiers', 'expected_value', 'contact_all', 'contact_none'}
    assert policies.loc['contact_none', 'realised_profit'] == 0
    assert (work/'reports'/'decision'/'profit_curve.png').stat().st_size > 5000


def test_selected_model_json_describes_the_deployment(telco_run):
    work, _, r = telco_run
    sel = selected(work)
    assert {'model', 'calibration', 'metrics', 'thresholds', 'policy', 'artifact', 'sha256', 'mlflow_run_id',
            'registered_model', 'created_at', 'schema'} <= set(sel)
    if sel['model'] == 'stack':                                      # the stack of calibrated candidates won out of fold
        assert sel['calibration'] == 'stack' and set(sel['params']['weights']) <= set(CANDIDATES)
        assert all(w > 0 for w in sel['params']['weights'].values()) and set(sel['params']['members']) == set(sel['params']['weights'])
    else: assert sel['model'] in CANDIDATES and sel['calibration'] in ('none', 'sigmoid', 'isotonic')
    assert sel['sha256'] == hashlib.sha256((work/'models'/'artifacts'/'deployed_pipeline.pkl').read_bytes()).hexdigest()
    assert 0 < sel['thresholds']['review'] < sel['thresholds']['escalate'] < 1
    assert sel['policy']['settings']['review_threshold'] == sel['thresholds']['review']
    assert sel['registered_model']['name'] == 'bayespilot-churn' and sel['registered_model']['alias'] == 'champion'
    row = pd.read_csv(work/'reports'/'stage2'/'comparison.csv').query('selected')
    assert np.isclose(sel['metrics']['log_loss'], row.log_loss.iloc[0])
    assert sel['model'] in r.stdout and 'deployed_pipeline.pkl' in r.stdout


def test_the_model_is_selected_before_the_test_split_is_scored(telco_run):
    "Telco has ~5 600 training rows, fewer than the refit limit: chosen by out-of-fold log loss over all of them, refitted."
    work, _, _ = telco_run
    sel = selected(work)
    assert (sel['selection'], sel['selection_rule'], sel['refit']) == ('oof_log_loss', 'log_loss', True)
    assert sel['selection_rows'] == 5634 and set(sel['selection_scores']) == {*CANDIDATES, 'stack'}
    assert sel['model'] == min(sel['selection_scores'], key=sel['selection_scores'].get)
    assert sel['thresholds']['chosen_on'].startswith('all training rows')
    card = json.loads((work/'models'/'artifacts'/'deployed_pipeline.json').read_text())
    assert (card['selection'], card['n_train'], card['n_calibration']) == ('oof_log_loss', 5634, 0)


def test_registry_alias_points_at_the_logged_run(telco_run):
    from mlflow import MlflowClient
    work, uri, _ = telco_run
    sel, client = selected(work), MlflowClient(uri)
    mv = client.get_model_version_by_alias('bayespilot-churn', 'champion')
    assert int(mv.version) == sel['registered_model']['version'] and mv.run_id == sel['mlflow_run_id']
    parent = client.get_run(sel['mlflow_run_id'])
    assert parent.data.tags['bayespilot.selected'] == sel['model'] and parent.data.metrics['test_log_loss'] == pytest.approx(sel['metrics']['log_loss'])
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(c.data.tags['bayespilot.candidate'] for c in children) == sorted([*CANDIDATES, 'stack'])


def test_deployed_artifact_loads_and_predicts_raw_rows(telco_run):
    from bayespilot.artifacts import load_artifact
    work, _, _ = telco_run
    model, card = load_artifact(work/'models'/'artifacts'/'deployed_pipeline.pkl')
    raw = pd.read_csv(work/'..'/'shared'/'data'/'telco_churn.csv', dtype=str).head(50)   # all text, TotalCharges blanks included
    p = model.predict_proba(raw.drop(columns=['Churn']))[:, 1]
    assert p.shape == (50,) and np.all((p > 0) & (p < 1))
    if card['model'] == 'stack':          # the deployed stack is its members' saved pipelines pooled with the card's weights
        from scipy.special import expit, logit
        w = card['params']['weights']
        members = {n: load_artifact(work/'models'/'artifacts'/f'{n}_pipeline.pkl')[0].predict_proba(raw)[:, 1] for n in w}
        z = card['params']['intercept'] + sum(w[n] * logit(np.clip(members[n], 1e-6, 1 - 1e-6)) for n in w)
        np.testing.assert_allclose(expit(z), p, rtol=1e-10)
    else:
        same, _ = load_artifact(work/'models'/'artifacts'/f"{card['model']}_pipeline.pkl")
        np.testing.assert_allclose(same.predict_proba(raw)[:, 1], p)
    churned = raw.Churn.eq('Yes').to_numpy()
    assert p[churned].mean() > p[~churned].mean()


def test_nothing_trainable_is_one_clear_error(tmp_path, shared_data):
    (tmp_path/'shared').symlink_to(shared_data.parent, target_is_directory=True)
    work = tmp_path/'work'; work.mkdir()
    (work/'bad.toml').write_text('[stage2]\ncandidates = ["logistic_regression"]\n[stage2.params.logistic_regression]\nC = -1.0\n')
    r = run_cli('train-stage2', '--config', 'bad.toml', *TELCO, '--tracking-uri', f"sqlite:///{tmp_path/'m.db'}", cwd=work)
    assert r.returncode == 2
    errors = [l for l in r.stderr.splitlines() if l.startswith('error:')]
    assert len(errors) == 1 and 'no candidate could be trained: logistic_regression' in errors[0] and "'C' parameter" in errors[0]
    assert 'Traceback' not in r.stderr
    assert not (work/'models'/'artifacts'/'deployed_pipeline.pkl').exists()


def test_the_deployed_model_serves_over_http(telco_run, tmp_path):
    "train-stage2, then uvicorn on its artifact: /model names what was deployed, /predict returns the artifact's own probability."
    import httpx
    from api_fixtures import live_server
    from bayespilot.artifacts import load_artifact
    work, _, _ = telco_run
    path = work/'models'/'artifacts'/'deployed_pipeline.pkl'
    model, card = load_artifact(path)
    raw = pd.read_csv(work/'..'/'shared'/'data'/'telco_churn.csv', dtype=str).sample(25, random_state=0)
    numeric = set(card['schema']['numeric'])
    with live_server(path, tmp_path/'predictions.jsonl') as (base, _):
        info = httpx.get(f'{base}/model').json()
        assert info['fast_path'] is True, info['fast_path_reason']             # the compiled scorer passed its self-check
        assert (info['model'], info['calibration'], info['params']) == (card['model'], card['calibration'], card['params'])
        for _, r in raw.iterrows():
            body = {k: (float(v) if k in numeric else v) for k, v in r.items() if k != 'Churn' and str(v).strip()}
            res = httpx.post(f'{base}/predict', json=body)
            assert res.status_code == 200, res.text
            expected = model.predict_proba(pd.DataFrame([body]))[0, 1]
            assert abs(res.json()['churn_probability'] - expected) < 1e-9, (body, res.json(), expected)
