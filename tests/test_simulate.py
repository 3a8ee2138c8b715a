"""`bayespilot simulate` end to end: two short rounds through the CLI on a small fitted model in the default economy,
the same JSON for the same seed, the posterior moving toward the true gamma, the report and the sealed policy
versions on disk, and bad input refused with one message, exit 2 and nothing written."""
import json
import pytest

from bayespilot.cli import main
from bayespilot.policy import read_policy
from api_fixtures import fit_model, save_model
from conftest import REPO, cli_env, run_cli

CONFIG = REPO / 'configs' / 'default.toml'


@pytest.fixture(scope='module')
def sim_dir(tmp_path_factory):
    "A scratch project folder holding a small deployed logistic regression (and no policy in force)."
    d = tmp_path_factory.mktemp('simulate')
    pipe, schema, _ = fit_model()
    save_model(pipe, schema, d / 'deployed_pipeline.pkl')
    return d


def simulate(d, out, *args):
    "Run `bayespilot simulate` in `d` on the fixture model: 2 rounds of 1 500 customers."
    return run_cli('simulate', '--config', CONFIG, '--model', d / 'deployed_pipeline.pkl', '--rounds', 2,
                   '--batch', 1500, '--quiet', '--out', d / out, *args, cwd=d, env=cli_env())


@pytest.fixture(scope='module')
def two_runs(sim_dir):
    "The same seed twice, with an optimistic prior (0.3) against a true escalate gamma of 0.05."
    runs = [simulate(sim_dir, out, '--seed', 7, '--true-gamma', 'escalate=0.05') for out in ('a', 'b')]
    for r in runs: assert r.returncode == 0, r.stderr
    return sim_dir, runs


def test_deterministic_per_seed(two_runs):
    d, runs = two_runs
    a, b = (d / 'a' / 'summary.json').read_text(), (d / 'b' / 'summary.json').read_text()
    assert a == b
    assert [l.split('cumulative')[0] for l in runs[0].stdout.splitlines()[:2]] == \
           [l.split('cumulative')[0] for l in runs[1].stdout.splitlines()[:2]]


def test_posterior_moves_toward_the_truth(two_runs):
    d, runs = two_runs
    s = json.loads((d / 'a' / 'summary.json').read_text())
    esc = [r['gamma']['escalate'] for r in s['rounds']]
    assert esc[0]['prior_mean'] == pytest.approx(0.3) and esc[0]['true'] == pytest.approx(0.05)
    assert esc[0]['n_treated'] > 0 and esc[0]['n_untreated'] > 0
    assert esc[0]['prior_mean'] - 0.1 > max(esc[0]['posterior_mean'], esc[1]['posterior_mean'])   # far from the prior
    assert esc[1]['posterior_interval'][0] < 0.05 < esc[1]['posterior_interval'][1]               # and around the truth
    widths = [g['posterior_interval'][1] - g['posterior_interval'][0] for g in esc]
    prior_width = esc[0]['prior_interval'][1] - esc[0]['prior_interval'][0]
    assert prior_width > widths[0] > widths[1]
    assert s['rounds'][1]['gamma']['escalate']['prior_mean'] == pytest.approx(esc[0]['posterior_mean'], abs=2e-3)
    assert s['rounds'][0]['contacted'] == {'review': 500, 'escalate': 200}     # the default capacity
    assert runs[0].stdout.startswith('round 1 (policy 0): review γ')


def test_report_and_policies_on_disk(two_runs):
    d, _ = two_runs
    out = d / 'a'
    assert {p.name for p in out.iterdir()} == {'summary.json', 'simulate.png', 'policies.png', 'report.md',
                                              'report.html', 'policies'}
    html = (out / 'report.html').read_text()
    assert html.count('data:image/png;base64,') == 2
    versions = [read_policy(out / 'policies' / f'policy-{v:04d}.json') for v in range(3)]
    assert [p.version for p in versions] == [0, 1, 2] and [p.parent for p in versions] == [None, 0, 1]
    s = json.loads((out / 'summary.json').read_text())
    last = s['rounds'][-1]['gamma']['escalate']
    fitted = versions[2].actions['escalate']
    assert fitted['alpha'] / (fitted['alpha'] + fitted['beta']) == pytest.approx(last['posterior_mean'], abs=2e-3)
    assert not (d / 'models' / 'policies').exists()          # the simulated policies never reach the API's folder


@pytest.mark.parametrize('args, message', [
    (('--prior', 'escalate=2'), "--prior escalate=2: '2' is not a rate"),
    (('--true-gamma', 'escalate=0'), "--true-gamma escalate=0: '0' is not a rate"),
    (('--holdout', '1.5'), '--holdout/--exploration'),
    (('--rounds', '0'), '--rounds must be a whole number >= 1'),
])
def test_bad_input(sim_dir, args, message, capsys):
    "In-process (`main`, as the command runs it): exit 2, one line naming the flag, nothing written."
    code = main(['simulate', '--config', str(CONFIG), '--model', str(sim_dir / 'deployed_pipeline.pkl'), '--quiet',
                 '--out', str(sim_dir / 'bad'), *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith('error: ') and message in err and err.count('\n') == 1, err
    assert not (sim_dir / 'bad').exists()
