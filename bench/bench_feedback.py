"""Closing the loop (issue 12): does the Bayesian update of each action's success rate find the truth, and does it pay?

Runs bayespilot.simulate's rounds in the synthetic world of bayespilot.world (no CLI): new customers each round,
decisions with capacity and a 10 % randomized holdout, outcomes under the true gamma, the posterior (06f), the next
policy. The model's probabilities are the truth seen with log-odds noise of sd 0.38 (the error of the deployed Stage 2
model of `make run`; the stand-in keeps 40 seeds within minutes); (c) and a coverage cross-check also use the deployed
model itself when models/artifacts/deployed_pipeline.pkl exists.

(a) coverage: prior mean 0.3 when the true gamma is 0.1, and the reverse; 20 000 decided customers (4 rounds of 5 000);
    share of 40 seeds whose final 90 % interval holds the truth (goal >= 0.85), per action;
(b) learning: rounds until the learning policy earns >= 95 % of the policy that knows gamma in every later round, and
    its cumulative regret against the policy that never updates (same holdout and capacity);
(c) the default economy: the EV policy's capture of the oracle's gain over the best naive policy (goal >= 0.9), next to
    the old economy's contact-everyone share of the oracle (0.98 before issue 12).

Writes reports/bench/feedback.json and feedback.png. Usage: python bench/bench_feedback.py [--quick]
"""
import argparse, json, os, platform, statistics, sys, tempfile, time, warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import special

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import portable

from bayespilot.config import DecisionSettings, load_settings
from bayespilot.decision import CONTACT_ACTIONS
from bayespilot.policy import next_policy
from bayespilot.simulate import first_policy, next_actions, rounds_to_reach, run_round, scenario, simulate_rounds
from bayespilot.synthetic import generate
from bayespilot.world import capture, policy_table, world_from_settings, world_gammas

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / 'models' / 'artifacts' / 'deployed_pipeline.pkl'
NOISE_SD = 0.38


def stand_in(seed):
    "The model: each customer's true churn probability with log-odds noise of sd NOISE_SD (its own stream per batch)."
    def predict(customers, p_true):
        rng = np.random.default_rng([seed, len(p_true), int(p_true.sum() * 1e6) % 2**32])
        return special.expit(special.logit(p_true) + rng.normal(0, NOISE_SD, len(p_true)))
    return predict


def deployed(settings):
    "The deployed model's probabilities (verified load, compiled chunk scorer), or None when there is none."
    if not MODEL.exists(): return None
    from bayespilot.model_store import load_model
    from bayespilot.schema import as_numeric
    from bayespilot.score import chunk_probabilities
    m = load_model(MODEL, settings)
    return lambda df, _truth: chunk_probabilities(m, df.assign(**{c: as_numeric(df[c]) for c in m.schema.numeric}))


def wrong_prior(settings, prior, truth, capacity='default', actions=CONTACT_ACTIONS, weight=20.0):
    "Default-economy settings with `actions`' priors at mean `prior` (weight alpha + beta) and their true gamma."
    over = {}
    for a in actions:
        over |= {f'simulate.true_gamma.{a}': truth, f'decision.actions.{a}.alpha': weight * prior,
                 f'decision.actions.{a}.beta': weight * (1 - prior)}
    if capacity is None: over['decision.capacity'] = {'review': None, 'escalate': None}
    elif capacity != 'default': over['decision.capacity'] = capacity
    return load_settings(ROOT / 'configs' / 'default.toml', over)


def run(settings, rounds, batch, seed, predict, exploration=None, control='held_out'):
    "One simulation; returns its round records."
    scn = replace(scenario(settings, rounds=rounds, batch=batch, seed=seed, exploration=exploration), control=control)
    return simulate_rounds(scn, predict, first_policy(scn.decision, seed))['rounds']


def decided(rec, a):
    "Customers decided for action `a` in a round: treated with it plus held out from it."
    return rec['contacted'][a] + rec['held_out'][a]


def until_decided(s, a, budget, batch, seed, predict, control, max_rounds, pooled=True):
    "Rounds of `batch` until `budget` customers were decided for action `a` (or `max_rounds`); the records."
    recs, n = [], 0
    scn = replace(scenario(s, rounds=max_rounds, batch=batch, seed=seed), control=control, references=False,
                  pooled=pooled)
    first = policy = first_policy(scn.decision, seed)
    history = []
    for r in range(1, max_rounds + 1):
        rec, post, frame = run_round(scn, r, policy, first, predict, history)
        recs.append(rec); history.append(frame); n += decided(rec, a)
        if n >= budget: break
        key = f"simulate-s{seed}-{policy.version + 1:04d}"
        policy = next_policy(policy, next_actions(policy, post), experiment=key)
    return recs, n


def bench_coverage(seeds, budget, batch, predict_for, control='held_out', max_rounds=20, actions=CONTACT_ACTIONS,
                   cases=((0.3, 0.1), (0.1, 0.3)), weight=20.0, pooled=True):
    "(a): per action alone (the other off) and (prior, truth), the share of seeds whose 90 % interval covers the truth."
    out = {}
    for a in actions:
        other = next(x for x in CONTACT_ACTIONS if x != a)
        for prior, truth in cases:
            s = wrong_prior(None, prior, truth, {other: 0, a: None}, (a,), weight)
            hits, means, widths, ns, rounds = [], [], [], [], []
            for seed in seeds:
                recs, n = until_decided(s, a, budget, batch, seed, predict_for(seed), control, max_rounds, pooled)
                g = recs[-1]['gamma'][a]
                lo, hi = g['posterior_interval']
                hits.append(lo <= g['true'] <= hi); means.append(g['posterior_mean']); widths.append(hi - lo)
                ns.append(n); rounds.append(len(recs))
            out[f'{a}_prior_{prior}_true_{truth}'] = {
                'coverage': float(np.mean(hits)), 'seeds': len(seeds),
                'median_posterior_mean': float(np.median(means)),
                'median_interval_width': float(np.median(widths)), 'median_decided': float(np.median(ns)),
                'median_rounds': float(np.median(rounds)), 'goal': 0.85, 'goal_met': bool(np.mean(hits) >= 0.85)}
            print(f"  (a) {control}, {'pooled' if pooled else 'chained'}, weight {weight:g}, {a}, prior {prior}, "
                  f"true {truth}: coverage "
                  f"{np.mean(hits):.3f}, median mean {np.median(means):.3f}, {np.median(ns):.0f} decided in "
                  f"{np.median(rounds):.0f} rounds", flush=True)
    return out


def learning_case(s, rounds, batch, seeds, exploration=None):
    "(b) for one setting: rounds to 95 % of knows-gamma and cumulative regret, per seed and their medians."
    runs = [run(s, rounds, batch, seed, stand_in(seed), exploration) for seed in seeds]
    reach = [rounds_to_reach(r, 0.95) for r in runs]
    share = [[x['profit']['learning'] / x['profit']['knows_gamma'] for x in r] for r in runs]
    never = [[x['profit']['never_updates'] / x['profit']['knows_gamma'] for x in r] for r in runs]
    reg = [r[-1]['cumulative_regret'] for r in runs]
    return {'rounds': rounds, 'batch': batch, 'seeds': len(seeds), 'exploration': exploration or 'none',
            'rounds_to_95_of_knows_gamma': reach,
            'median_rounds_to_95': statistics.median([x if x is not None else rounds + 1 for x in reach]),
            'reached_in_every_seed': all(x is not None for x in reach),
            'median_share_of_knows_gamma_per_round': np.median(share, axis=0).round(4).tolist(),
            'median_never_updating_share_per_round': np.median(never, axis=0).round(4).tolist(),
            'median_cumulative_regret_learning': float(np.median([x['learning'] for x in reg])),
            'median_cumulative_regret_never_updates': float(np.median([x['never_updates'] for x in reg])),
            'regret_ratio_learning_over_never': float(np.median([x['learning'] / x['never_updates'] for x in reg]))}


def bench_learning(rounds, batch, seeds):
    "(b): wrong priors both ways, without capacity (gamma decides how many to contact) and with the default one."
    out = {}
    for prior, truth in ((0.3, 0.1), (0.1, 0.3)):
        for cap in (None, 'default'):
            key = f"prior_{prior}_true_{truth}_{'no_capacity' if cap is None else 'default_capacity'}"
            out[key] = learning_case(wrong_prior(None, prior, truth, cap), rounds, batch, seeds)
            print(f"  (b) {key}: rounds to 95 % of knows-gamma {out[key]['rounds_to_95_of_knows_gamma']}, regret "
                  f"learning / never updating {out[key]['regret_ratio_learning_over_never']:.2f}", flush=True)
    key = 'prior_0.3_true_0.1_no_capacity'
    out[key + '_thompson'] = learning_case(wrong_prior(None, 0.3, 0.1, None), rounds, batch, seeds, 'thompson')
    return out


def economy_capture(settings, predict, batches, batch):
    "(c): capture and each policy's share of the oracle on `batches` new batches; medians."
    world, ds = world_from_settings(settings), settings.decision
    caps, shares, old = [], [], []
    for b in range(batches):
        customers, truth = generate(batch, seed=1000 + b)
        p_true, v = truth['churn_probability'].to_numpy(), customers['clv'].to_numpy()
        p, gam = predict(customers, p_true), world_gammas(world, customers)
        rep = policy_table(p, p_true, v, gam, world, ds, np.random.default_rng(b))
        caps.append(capture(rep)); shares.append(rep['share_of_oracle'].to_dict())
        old_ds = DecisionSettings()                                          # the economy before issue 12
        old_world = world.__class__({a: old_ds.actions[a].alpha / (old_ds.actions[a].alpha + old_ds.actions[a].beta)
                                     for a in CONTACT_ACTIONS}, 0.0, old_ds.omega)
        old_rep = policy_table(p, p_true, v, world_gammas(old_world, customers), old_world, old_ds,
                               np.random.default_rng(b))
        old.append(old_rep.loc['contact_all', 'share_of_oracle'])
    med = {k: float(np.median([s[k] for s in shares])) for k in shares[0]}
    return {'batches': batches, 'batch': batch, 'capture': [round(c, 4) for c in caps],
            'median_capture': float(np.median(caps)), 'goal': 0.9, 'goal_met': bool(np.median(caps) >= 0.9),
            'median_share_of_oracle': med, 'old_economy_contact_all_share_of_oracle': float(np.median(old))}


def plot(res, path):
    "Coverage per case, the learning curves (share of knows-gamma per round), the capture."
    from bayespilot.reports import figure, save_png
    fig, ax = figure(3, 1, size=(16, 4.4))
    cov = res['coverage']
    ax[0, 0].bar([k.replace('_prior_', '\nprior ').replace('_true_', ', true ') for k in cov],
                 [c['coverage'] for c in cov.values()], color='tab:blue')
    ax[0, 0].axhline(0.85, color='k', ls='--', label='goal 0.85')
    ax[0, 0].axhline(0.9, color='grey', ls=':', label='nominal 0.90')
    ax[0, 0].set(ylim=(0, 1.05), ylabel='share of seeds', title='(a) 90 % interval covers the true γ (20 000 decided)')
    ax[0, 0].legend(fontsize=8); ax[0, 0].tick_params(axis='x', labelsize=7)
    for k, case in res['learning'].items():
        y = case['median_share_of_knows_gamma_per_round']
        ax[0, 1].plot(range(1, len(y) + 1), y, 'o-', label=f"learning: {k}", ms=3)
    for k in ('prior_0.3_true_0.1_no_capacity', 'prior_0.1_true_0.3_no_capacity'):
        y = res['learning'][k]['median_never_updating_share_per_round']
        ax[0, 1].plot(range(1, len(y) + 1), y, ':', label=f"never updates: {k}")
    ax[0, 1].axhline(0.95, color='k', ls='--')
    ax[0, 1].set(xlabel='round', ylabel='profit / policy that knows γ', title='(b) learning, median of seeds')
    ax[0, 1].legend(fontsize=6)
    ec = res['economy']
    rows = [(name, c['median_capture']) for name, c in ec.items() if isinstance(c, dict) and 'median_capture' in c]
    ax[0, 2].bar([r[0] for r in rows], [r[1] for r in rows], color='tab:green')
    ax[0, 2].axhline(0.9, color='k', ls='--', label='goal 0.9')
    ax[0, 2].set(ylim=(0, 1), ylabel="share of the oracle's gain over the best naive policy",
                 title='(c) EV policy on the default economy'); ax[0, 2].legend(fontsize=8)
    return save_png(fig, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help='few seeds and rounds (a smoke run, not for figures)')
    a = ap.parse_args(argv)
    warnings.simplefilter('ignore')
    t0 = time.perf_counter()
    res = dict(benchmark='feedback', quick=a.quick, python=platform.python_version(), numpy=np.__version__,
               cpus=os.cpu_count(), load_avg=list(os.getloadavg()) if hasattr(os, 'getloadavg') else None,
               model=f'truth + log-odds noise N(0, {NOISE_SD}) (the deployed model where named)',
               config=portable(ROOT / 'configs' / 'default.toml'))
    seeds = list(range(3 if a.quick else 40))
    budget, batch = (5000, 2500) if a.quick else (20_000, 5000)
    few, esc = seeds[:3 if a.quick else 10], ('escalate',)
    res['coverage_diagnostics'] = {
        'right_prior': bench_coverage(few, budget, batch, stand_in, actions=esc, cases=((0.1, 0.1), (0.3, 0.3))),
        'wrong_prior_weight_4': bench_coverage(few, budget, batch, stand_in, actions=esc, weight=4.0),
        'untreated_control': bench_coverage(few, budget, batch, stand_in, control='untreated', actions=esc),
        'chained_update': bench_coverage(few, budget, batch, stand_in, pooled=False)}
    res['coverage'] = bench_coverage(seeds, budget, batch, stand_in)
    settings = load_settings(ROOT / 'configs' / 'default.toml')
    model = deployed(settings)
    if model is not None and not a.quick:
        res['coverage_deployed_model'] = {c: bench_coverage(list(range(4)), budget, batch, lambda seed: model,
                                                            control=c, actions=esc) for c in ('held_out', 'untreated')}
    res['learning'] = bench_learning(4 if a.quick else 10, 2500 if a.quick else 5000, list(range(2 if a.quick else 3)))
    res['economy'] = {'stand_in': economy_capture(settings, stand_in(0), 2 if a.quick else 6, 5000)}
    if model is not None:
        res['economy']['deployed_model'] = economy_capture(settings, model, 2 if a.quick else 6, 5000)
    for k, c in res['economy'].items():
        print(f"(c) {k}: capture {c['median_capture']:.3f} (batches {c['capture']}); old economy contact-all share of "
              f"the oracle {c['old_economy_contact_all_share_of_oracle']:.3f}", flush=True)
    res['seconds'] = round(time.perf_counter() - t0, 1)
    out = ROOT / 'reports' / 'bench'; out.mkdir(parents=True, exist_ok=True)
    stem = 'feedback_quick' if a.quick else 'feedback'
    res['figure'] = portable(plot(res, out / f'{stem}.png'))
    fd, tmp = tempfile.mkstemp(dir=out, suffix='.tmp')
    with os.fdopen(fd, 'w') as f: json.dump(res, f, indent=2)
    os.replace(tmp, out / f'{stem}.json')
    print(f"wrote {portable(out / f'{stem}.json')} in {res['seconds']} s")
    ok = all(c['goal_met'] for c in res['coverage'].values()) and \
        all(c['goal_met'] for c in res['economy'].values())
    return 0 if ok else 1


if __name__ == '__main__': sys.exit(main())
