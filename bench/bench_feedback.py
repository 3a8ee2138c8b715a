"""Closing the loop (issue 12): does the Bayesian update of each action's success rate find the truth, and does it pay?

Runs bayespilot.simulate's rounds in the synthetic world of bayespilot.world (no CLI): new customers each round,
decisions with capacity and a 10 % randomized holdout, outcomes under the true gamma, the posterior (06f), the next
policy. The model's probabilities are the truth seen with log-odds noise of sd 0.38 (the error of the deployed Stage 2
model of `make run`; the stand-in keeps 40 seeds within minutes); (c) and a coverage cross-check also use the deployed
model itself when models/artifacts/deployed_pipeline.pkl exists.

(a) coverage: prior mean 0.3 when the true gamma is 0.1, and the reverse, at the default config's prior weight
    (alpha + beta = 8); 20 000 decided customers (rounds of 5 000); share of 40 seeds whose final 90 % interval holds
    the truth (goal >= 0.85), per action, with its 95 % binomial interval and the z-scores (mean - truth) / sd.
    Diagnostics beside it, same seeds: a flat Beta(1, 1) prior, weight 20 (the old default), and the old estimator
    ('joint' calibration) at weight 20 (what the previous figures measured); and, only when asked for
    (--sections more_seeds, ~15 min), the same on the 160 seeds 40-199: the coverage rate itself, to one binomial
    standard error of about 2.4 %;
(e) the estimator alone: the final designs of (a), their holdout re-randomized and outcomes redrawn, flat prior:
    joint vs fitted-and-integrated calibration vs the model-free arm-means estimate, and an exactly logit-linear
    calibration as the control;
(r) campaign replay: randomized campaign tables drawn from the world (2 000-20 000 customers, 10-50 % control, one
    or two arms, gamma 0.05-0.3, calibrated / over-predicting model / drifted population) through the campaign import
    (`run_outcomes`, what `bayespilot outcomes --campaign` runs; one seed also through the CLI): how often the 90 %
    interval holds the table's own arm-means estimate 1 - churn_treated / churn_control, and the truth;
(b) learning: rounds until the learning policy earns >= 95 % of the policy that knows gamma in every later round, and
    its cumulative regret against the policy that never updates (same holdout and capacity);
(c) the default economy: the EV policy's capture of the oracle's gain over the best naive policy (goal >= 0.9), next to
    the old economy's contact-everyone share of the oracle (0.98 before issue 12).

Writes reports/bench/feedback.json and feedback.png (the sections run are merged into an existing JSON, so a long run
can be split: --sections coverage,flat,...). Usage: python bench/bench_feedback.py [--quick] [--sections A,B]
"""
import argparse, json, os, platform, statistics, subprocess, sys, tempfile, time, warnings
from dataclasses import replace
from pathlib import Path

import numpy as np, pandas as pd
from scipy import special, stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import portable

from bayespilot.config import DecisionSettings, load_settings
from bayespilot.decision import CONTACT_ACTIONS
from bayespilot.feedback import gamma_posterior, logit
from bayespilot.policy import next_policy
from bayespilot.simulate import first_policy, next_actions, rounds_to_reach, run_round, scenario, simulate_rounds
from bayespilot.synthetic import draw_outcomes, generate
from bayespilot.world import capture, policy_table, world_from_settings, world_gammas

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / 'configs' / 'default.toml'
MODEL = ROOT / 'models' / 'artifacts' / 'deployed_pipeline.pkl'
NOISE_SD = 0.38
CASES = ((0.3, 0.1), (0.1, 0.3))


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


def default_weight(action):
    "alpha + beta of `action`'s prior in configs/default.toml."
    a = load_settings(CONFIG).decision.actions[action]
    return a.alpha + a.beta


def wrong_prior(settings, prior, truth, capacity='default', actions=CONTACT_ACTIONS, weight=None):
    "Default-economy settings with `actions`' priors at mean `prior` (weight: the config's, a number, or 'flat')."
    over = {}
    for a in actions:
        w = default_weight(a) if weight is None else weight
        al, be = (1.0, 1.0) if w == 'flat' else (w * prior, w * (1 - prior))
        over |= {f'simulate.true_gamma.{a}': truth, f'decision.actions.{a}.alpha': al, f'decision.actions.{a}.beta': be}
    if capacity is None: over['decision.capacity'] = {'review': None, 'escalate': None}
    elif capacity != 'default': over['decision.capacity'] = capacity
    return load_settings(CONFIG, over)


def run(settings, rounds, batch, seed, predict, exploration=None, control='held_out'):
    "One simulation; returns its round records."
    scn = replace(scenario(settings, rounds=rounds, batch=batch, seed=seed, exploration=exploration), control=control)
    return simulate_rounds(scn, predict, first_policy(scn.decision, seed))['rounds']


def decided(rec, a):
    "Customers decided for action `a` in a round: treated with it plus held out from it."
    return rec['contacted'][a] + rec['held_out'][a]


def until_decided(s, a, budget, batch, seed, predict, control, max_rounds, pooled=True, calibration='fit'):
    "Rounds of `batch` until `budget` customers were decided for `a`: (records, n, last posterior, decided rows)."
    recs, n, history = [], 0, []
    scn = replace(scenario(s, rounds=max_rounds, batch=batch, seed=seed), control=control, references=False,
                  pooled=pooled, calibration=calibration)
    first = policy = first_policy(scn.decision, seed)
    for r in range(1, max_rounds + 1):
        rec, post, frame = run_round(scn, r, policy, first, predict, history)
        recs.append(rec); history.append(frame); n += decided(rec, a)
        if n >= budget: break
        key = f"simulate-s{seed}-{policy.version + 1:04d}"
        policy = next_policy(policy, next_actions(policy, post), experiment=key)
    data = pd.concat(history, ignore_index=True)
    keep = (data['action'].astype(str) == a).to_numpy() | data['holdout'].to_numpy(bool)
    return recs, n, post[a], data.loc[keep, ['p', 'p_true']].to_numpy('float32')


def share_ci(hits) -> list:
    "The 95 % Clopper-Pearson interval of a share of seeds."
    return [round(float(x), 3) for x in stats.binomtest(int(np.sum(hits)), len(hits)).proportion_ci(0.95)]


def bench_coverage(seeds, budget, batch, predict_for, control='held_out', max_rounds=20, actions=CONTACT_ACTIONS,
                   cases=CASES, weight=None, pooled=True, calibration='fit', designs=None):
    "(a): per action alone (the other off) and (prior, truth), the share of seeds whose 90 % interval covers the truth."
    out = {}
    for a in actions:
        other = next(x for x in CONTACT_ACTIONS if x != a)
        for prior, truth in cases:
            s = wrong_prior(None, prior, truth, {other: 0, a: None}, (a,), weight)
            hits, means, widths, ns, rounds, z = [], [], [], [], [], []
            key = f'{a}_prior_{prior}_true_{truth}'
            for seed in seeds:
                recs, n, post, rows = until_decided(s, a, budget, batch, seed, predict_for(seed), control, max_rounds,
                                                    pooled, calibration)
                g = recs[-1]['gamma'][a]
                lo, hi = g['posterior_interval']
                hits.append(lo <= g['true'] <= hi); means.append(g['posterior_mean']); widths.append(hi - lo)
                ns.append(n); rounds.append(len(recs)); z.append((g['posterior_mean'] - g['true']) / post['sd'])
                if designs is not None: designs.setdefault(key, []).append((rows, g['true']))
            out[key] = {
                'coverage': float(np.mean(hits)), 'coverage_ci95': share_ci(hits), 'seeds': len(seeds),
                'z_mean': round(float(np.mean(z)), 3),
                'z_sd': round(float(np.std(z, ddof=1)), 3) if len(z) > 1 else None,
                'mean_bias': float(np.mean(means) - truth), 'median_posterior_mean': float(np.median(means)),
                'median_interval_width': float(np.median(widths)), 'median_decided': float(np.median(ns)),
                'median_rounds': float(np.median(rounds)), 'prior_weight': weight or default_weight(a),
                'calibration': calibration, 'goal': 0.85, 'goal_met': bool(np.mean(hits) >= 0.85)}
            print(f"  (a) {control}, {'pooled' if pooled else 'chained'}, {calibration}, weight "
                  f"{out[key]['prior_weight']}, {a}, prior {prior}, true {truth}: coverage {np.mean(hits):.3f} "
                  f"z {np.mean(z):+.2f} +- {out[key]['z_sd']}, median mean {np.median(means):.4f}, "
                  f"{np.median(ns):.0f} decided in {np.median(rounds):.0f} rounds", flush=True)
    return out


def replicate(rows, truth, rng, linear=None):
    "One re-randomization of a design: 10 % held out at random, outcomes redrawn (c = p_true, or a logit-linear c)."
    p, pt = rows[:, 0].astype(float), rows[:, 1].astype(float)
    if linear is not None: pt = special.expit(linear[0] + linear[1] * logit(p))
    h = rng.random(len(p)) < 0.1
    y = (rng.random(len(p)) < pt) & ~(~h & (rng.random(len(p)) < truth))
    return p, y, h


def arm_means(y, h, truth):
    "The model-free estimate 1 - churn_treated / churn_held_out with its delta-method sd."
    qh, qt = y[h].mean(), y[~h].mean()
    sd = qt / qh * np.sqrt((1 - qh) / (h.sum() * qh) + (1 - qt) / ((~h).sum() * qt))
    return 1 - qt / qh, sd


def z_table(res, truth) -> dict:
    "Coverage, z-score mean and sd, bias and median width of (mean, sd, lo, hi) rows."
    r = np.array(res, float)
    z = (r[:, 0] - truth) / r[:, 1]
    return {'n': len(r), 'coverage': round(float(np.mean((r[:, 2] <= truth) & (truth <= r[:, 3]))), 3),
            'z_mean': round(float(z.mean()), 3), 'z_sd': round(float(z.std(ddof=1)), 3),
            'mean_bias': round(float(r[:, 0].mean() - truth), 5),
            'median_width': round(float(np.median(r[:, 3] - r[:, 2])), 4)}


def bench_estimator(designs, reps, linear=(-0.09, 0.9)):
    "(e): per case, joint vs fitted calibration vs arm means on re-randomized designs; and a logit-linear control."
    out = {}
    for key, runs in designs.items():
        a = key.split('_')[0]
        for kind in ('stand_in', 'logit_linear') if a == 'review' else ('stand_in',):
            res = {'fit': [], 'joint': [], 'arm_means': []}
            for i, (rows, truth) in enumerate(runs):
                for r in range(reps):
                    p, y, h = replicate(rows, truth, np.random.default_rng([i, r, 11]),
                                        linear if kind == 'logit_linear' else None)
                    for cal in ('fit', 'joint'):
                        g = gamma_posterior(p[h], y[h], p[~h], y[~h], 1.0, 1.0, cal)
                        res[cal].append((g['mean'], g['sd'], *g['interval']))
                    m, sd = arm_means(y, h, truth)
                    res['arm_means'].append((m, sd, m - 1.645 * sd, m + 1.645 * sd))
            out[f'{key}_{kind}'] = {k: z_table(v, truth) for k, v in res.items()}
            print(f"  (e) {key} {kind}: " + '; '.join(f"{k} z {v['z_mean']:+.2f} +- {v['z_sd']:.2f} cov {v['coverage']}"
                                                     for k, v in out[f'{key}_{kind}'].items()), flush=True)
    return out


CAMPAIGNS = {   # name: (customers, control share, {arm: true gamma}, population, model)
    'n2000_control50_escalate': (2000, 0.5, {'escalate': 0.2}, 'all', 'calibrated'),
    'n5000_control20_two_arms': (5000, 0.2, {'review': 0.05, 'escalate': 0.3}, 'all', 'calibrated'),
    'n20000_control10_two_arms': (20000, 0.1, {'review': 0.1, 'escalate': 0.2}, 'all', 'calibrated'),
    'n5000_control30_targeted_top40': (5000, 0.3, {'escalate': 0.3}, 'targeted', 'calibrated'),
    'n10000_control20_overpredicting_model': (10000, 0.2, {'review': 0.1, 'escalate': 0.25}, 'all', 'overpredicts'),
    'n5000_control30_drifted_population': (5000, 0.3, {'escalate': 0.15}, 'drifted', 'calibrated'),
}


def campaign_models(folder):
    "Two logistic regressions on 20 000 generated customers: one calibrated, one fitted with churners weighted 3x."
    from sklearn.linear_model import LogisticRegression
    from bayespilot.artifacts import save_artifact
    from bayespilot.config import DataSettings
    from bayespilot.data import prepare
    from bayespilot.features import make_pipeline
    ds = prepare(generate(20_000, seed=77)[0], DataSettings())
    out = {}
    for name, w in (('calibrated', 1.0), ('overpredicts', 3.0)):
        pipe = make_pipeline(ds.schema, None, LogisticRegression(max_iter=1000))
        pipe.fit(ds.X, ds.y, model__sample_weight=np.where(ds.y == 1, w, 1.0))
        save_artifact(pipe, Path(folder) / f'{name}.pkl', {'name': f'campaign-{name}', 'schema': ds.schema.to_dict()})
        out[name] = Path(folder) / f'{name}.pkl'
    return out


def campaign_table(spec, seed, model_path, path):
    "A randomized campaign drawn from the world: features, arm (an action or 'control'), churned; its arm means."
    from bayespilot.config import Settings
    from bayespilot.model_store import load_model
    from bayespilot.score import chunk_probabilities
    n, share, arms, population, _ = spec
    rng = np.random.default_rng([seed, 5])
    table, truth = generate(n * (3 if population == 'targeted' else 1), seed=10_000 + seed,
                            drift=population == 'drifted')
    if population == 'targeted':                                   # the campaign went to the model's riskiest 40 %
        from bayespilot.config import DataSettings
        from bayespilot.data import prepare
        p = chunk_probabilities(load_model(model_path, Settings()), prepare(table, DataSettings()).X)
        keep = np.sort(rng.choice(np.argsort(-p, kind='stable')[:int(0.4 * len(p))], n, replace=False))
        table, truth = table.iloc[keep].reset_index(drop=True), truth.iloc[keep].reset_index(drop=True)
    names = list(arms)
    arm = np.where(rng.random(n) < share, 'control', np.array(names)[rng.integers(0, len(names), n)])
    g = np.array([arms.get(x, 0.0) for x in arm])
    out = draw_outcomes(truth['churn_probability'].to_numpy(float), g, arm != 'control', 0.5, rng)
    table = table.assign(arm=arm, churned=np.where(out['churned'], 'yes', 'no'))
    table.to_csv(path, index=False)
    y = out['churned'].to_numpy()
    return {a: 1 - y[arm == a].mean() / y[arm == 'control'].mean() for a in names}


OLD_PRIORS = {'review': (2.0, 14.0), 'escalate': (6.0, 14.0)}      # configs/default.toml before the fix (weight 16, 20)


def campaign_settings(d, priors=None):
    "The default config with its own policy and report folders (and `priors` {action: (alpha, beta)} if given)."
    over = {'paths.policies': str(d / 'policies'), 'paths.reports': str(d / 'reports')}
    for a, (al, be) in (priors or {}).items():
        over |= {f'decision.actions.{a}.alpha': al, f'decision.actions.{a}.beta': be}
    return load_settings(CONFIG, over)


def campaign_once(spec, seed, model, d, priors=None, calibration='fit'):
    "One drawn campaign through the import: per arm, (posterior mean, sd, lo, hi, arm-means estimate, truth)."
    from bayespilot.outcomes_job import run_outcomes
    d.mkdir(parents=True, exist_ok=True)
    est = campaign_table(spec, seed, model, d / 'campaign.csv')
    rep = run_outcomes(campaign_settings(d, priors), campaign=d / 'campaign.csv', action_column='arm',
                       control_label='control', outcome_column='churned', model=model, calibration=calibration,
                       track=False)
    out = {}
    for a, g in spec[2].items():
        b = rep['actions'][a]
        assert abs(b['arm_estimate']['raw'] - est[a]) < 1e-9, (a, b['arm_estimate'], est[a])   # the same arm means
        out[a] = (b['mean'], b['sd'], *b['interval'], est[a], g)
    return out


def campaign_summary(rows) -> dict:
    "Shares of seeds whose interval holds the arm-means estimate and the truth; widths and the estimate's distance."
    r = np.array(rows, float)
    has_est, has_truth = (r[:, 2] <= r[:, 4]) & (r[:, 4] <= r[:, 3]), (r[:, 2] <= r[:, 5]) & (r[:, 5] <= r[:, 3])
    inside = (r[:, 4] >= 0) & (r[:, 4] <= 1)                 # a gamma outside [0, 1] no interval of gamma can hold
    return {'seeds': len(r), 'contains_arm_means_estimate': round(float(has_est.mean()), 3),
            'contains_arm_means_estimate_ci95': share_ci(has_est),
            'arm_means_estimate_outside_0_1': round(float(1 - inside.mean()), 3),
            'contains_arm_means_estimate_when_inside_0_1':
                round(float(has_est[inside].mean()), 3) if inside.any() else None,
            'covers_truth': round(float(has_truth.mean()), 3),
            'covers_truth_ci95': share_ci(has_truth),
            'median_interval_width': round(float(np.median(r[:, 3] - r[:, 2])), 4),
            'median_abs_mean_minus_arm_estimate_in_sd': round(float(np.median(np.abs(r[:, 0] - r[:, 4]) / r[:, 1])), 3),
            'z_mean_vs_truth': round(float(np.mean((r[:, 0] - r[:, 5]) / r[:, 1])), 3),
            'sd_of_arm_estimate_around_truth': round(float(np.std(r[:, 4] - r[:, 5], ddof=1)), 4)}


def campaign_cli_check(spec, seed, model, d):
    "The same drawn campaign through the real `bayespilot outcomes --campaign` command: its posterior per arm."
    d.mkdir(parents=True, exist_ok=True)
    campaign_table(spec, seed, model, d / 'campaign.csv')
    cmd = [sys.executable, '-m', 'bayespilot.cli', 'outcomes', '--config', str(CONFIG), '--campaign',
           str(d / 'campaign.csv'), '--action-column', 'arm', '--control-label', 'control', '--outcome-column',
           'churned', '--model', str(model), '--policies-dir', str(d / 'policies'), '--reports-dir', str(d / 'reports'),
           '--no-mlflow']
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=d, timeout=300)
    if r.returncode != 0: raise RuntimeError(f"bayespilot outcomes failed ({r.returncode}): {r.stderr[-500:]}")
    rep = json.loads((d / 'reports' / 'outcomes' / 'outcomes.json').read_text())
    return {a: (rep['actions'][a]['mean'], rep['actions'][a]['interval']) for a in spec[2]}


def bench_campaigns(seeds, before_seeds):
    "(r): every campaign kind over `seeds` with the default priors, and over `before_seeds` as the old code did."
    out = {'campaigns': {k: {'customers': v[0], 'control_share': v[1], 'true_gamma': v[2], 'population': v[3],
                             'model': v[4]} for k, v in CAMPAIGNS.items()}, 'after': {}, 'before': {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp); models = campaign_models(tmp)
        for name, spec in CAMPAIGNS.items():
            for label, ss, priors, cal in (('after', seeds, None, 'fit'),
                                           ('before', before_seeds, OLD_PRIORS, 'joint')):
                rows = {a: [] for a in spec[2]}
                for seed in ss:
                    res = campaign_once(spec, seed, models[spec[4]], tmp / label / name / str(seed), priors, cal)
                    for a, row in res.items(): rows[a].append(row)
                out[label][name] = {a: campaign_summary(v) for a, v in rows.items()}
                print(f"  (r) {label} {name}: " + '; '.join(
                    f"{a} holds arm estimate {v['contains_arm_means_estimate']:.3f}, truth {v['covers_truth']:.3f}, "
                    f"width {v['median_interval_width']:.3f}" for a, v in out[label][name].items()), flush=True)
        name = 'n5000_control20_two_arms'; spec = CAMPAIGNS[name]
        cli = campaign_cli_check(spec, seeds[0], models[spec[4]], tmp / 'cli')
        lib = campaign_once(spec, seeds[0], models[spec[4]], tmp / 'lib')
        out['cli_check'] = {'campaign': name, 'seed': seeds[0], 'cli': cli,
                            'same_as_run_outcomes': all(abs(cli[a][0] - lib[a][0]) < 1e-12 for a in spec[2])}
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
    for prior, truth in CASES:
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
    "Coverage per case (after, before and the diagnostics), the campaign replay, learning curves, the capture."
    from bayespilot.reports import figure, save_png
    fig, ax = figure(4, 1, size=(21, 4.6))
    runs = [('after (default weight, fit)', res.get('coverage')),
            *((k, v) for k, v in (res.get('coverage_diagnostics') or {}).items() if k != 'untreated_control')]
    runs = [(k, v) for k, v in runs if v]
    if runs:
        keys, width = list(runs[0][1]), 0.8 / len(runs)
        for j, (label, cov) in enumerate(runs):
            ax[0, 0].bar(np.arange(len(keys)) + (j - (len(runs) - 1) / 2) * width,
                         [cov[k]['coverage'] if k in cov else np.nan for k in keys], width, label=label)
        ax[0, 0].set_xticks(range(len(keys)), [k.replace('_prior_', '\nprior ').replace('_true_', ', true ')
                                               for k in keys], fontsize=7)
    ax[0, 0].axhline(0.85, color='k', ls='--', label='goal 0.85'); ax[0, 0].axhline(0.9, color='grey', ls=':')
    ax[0, 0].set(ylim=(0, 1.05), ylabel='share of 40 seeds',
                 title='(a) 90 % interval covers the true γ (20 000 decided)')
    ax[0, 0].legend(fontsize=6, loc='lower left')
    camp = (res.get('campaign_replay') or {}).get('after') or {}
    labels = [f"{n.replace('_', ' ')}\n{a}" for n, arms in camp.items() for a in arms]
    vals = [(v['contains_arm_means_estimate'], v['covers_truth']) for arms in camp.values() for v in arms.values()]
    if vals:
        x = np.arange(len(vals))
        ax[0, 1].bar(x - 0.2, [v[0] for v in vals], 0.4, label='holds the arm-means estimate')
        ax[0, 1].bar(x + 0.2, [v[1] for v in vals], 0.4, label='holds the true γ')
        ax[0, 1].set_xticks(x, labels, fontsize=5, rotation=60, ha='right')
    ax[0, 1].axhline(0.9, color='grey', ls=':')
    ax[0, 1].set(ylim=(0, 1.05), ylabel='share of seeds', title='(r) campaign replay: the 90 % interval')
    ax[0, 1].legend(fontsize=7, loc='lower left')
    for k, case in (res.get('learning') or {}).items():
        y = case['median_share_of_knows_gamma_per_round']
        ax[0, 2].plot(range(1, len(y) + 1), y, 'o-', label=f"learning: {k}", ms=3)
    for k in ('prior_0.3_true_0.1_no_capacity', 'prior_0.1_true_0.3_no_capacity'):
        if k not in (res.get('learning') or {}): continue
        y = res['learning'][k]['median_never_updating_share_per_round']
        ax[0, 2].plot(range(1, len(y) + 1), y, ':', label=f"never updates: {k}")
    ax[0, 2].axhline(0.95, color='k', ls='--')
    ax[0, 2].set(xlabel='round', ylabel='profit / policy that knows γ', title='(b) learning, median of seeds')
    ax[0, 2].legend(fontsize=6)
    ec = res.get('economy') or {}
    rows = [(name, c['median_capture']) for name, c in ec.items() if isinstance(c, dict) and 'median_capture' in c]
    ax[0, 3].bar([r[0] for r in rows], [r[1] for r in rows], color='tab:green')
    ax[0, 3].axhline(0.9, color='k', ls='--', label='goal 0.9')
    ax[0, 3].set(ylim=(0, 1), ylabel="share of the oracle's gain over the best naive policy",
                 title='(c) EV policy on the default economy'); ax[0, 3].legend(fontsize=8)
    return save_png(fig, path)


SECTIONS = ('coverage', 'flat', 'weight20', 'before', 'untreated', 'estimator', 'campaign', 'learning', 'economy',
            'more_seeds')


def run_sections(names, quick, res):
    "Run the named sections into `res` (a dict: the JSON being built)."
    seeds = list(range(3 if quick else 40))
    budget, batch = (5000, 2500) if quick else (20_000, 5000)
    diag = res.setdefault('coverage_diagnostics', {})
    designs = {} if 'estimator' in names else None
    if 'coverage' in names or 'estimator' in names:
        res['coverage'] = bench_coverage(seeds, budget, batch, stand_in, designs=designs)
    if 'more_seeds' in names:                # (a) again on 160 other seeds: how far the 40 are from the rate
        diag['seeds_40_to_199'] = bench_coverage(list(range(40, 43 if quick else 200)), budget, batch, stand_in)
    if 'flat' in names: diag['flat_prior'] = bench_coverage(seeds, budget, batch, stand_in, weight='flat')
    if 'weight20' in names: diag['weight_20'] = bench_coverage(seeds, budget, batch, stand_in, weight=20.0)
    if 'before' in names:
        diag['before_joint_weight_20'] = bench_coverage(seeds, budget, batch, stand_in, weight=20.0,
                                                        calibration='joint')
    if 'untreated' in names:
        diag['untreated_control'] = bench_coverage(seeds[:3 if quick else 10], budget, batch, stand_in,
                                                   control='untreated')
    if designs is not None: res['estimator_check'] = bench_estimator(designs, 1 if quick else 2)
    if 'campaign' in names:
        res['campaign_replay'] = bench_campaigns(seeds[:3 if quick else 40], seeds[:2 if quick else 10])
    if 'learning' in names:
        res['learning'] = bench_learning(4 if quick else 10, 2500 if quick else 5000, list(range(2 if quick else 3)))
    if 'economy' in names:
        settings = load_settings(CONFIG); model = deployed(settings)
        res['economy'] = {'stand_in': economy_capture(settings, stand_in(0), 2 if quick else 6, 5000)}
        if model is not None:
            res['economy']['deployed_model'] = economy_capture(settings, model, 2 if quick else 6, 5000)
        for k, c in res['economy'].items():
            print(f"(c) {k}: capture {c['median_capture']:.3f} (batches {c['capture']}); old economy contact-all "
                  f"share of the oracle {c['old_economy_contact_all_share_of_oracle']:.3f}", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help='few seeds and rounds (a smoke run, not for figures)')
    ap.add_argument('--sections', default=','.join(s for s in SECTIONS if s != 'more_seeds'),
                    help=f"comma-separated, of {', '.join(SECTIONS)} (default: all but more_seeds)")
    a = ap.parse_args(argv)
    names = [s.strip() for s in a.sections.split(',') if s.strip()]
    if bad := sorted(set(names) - set(SECTIONS)): ap.error(f"unknown section(s) {bad}; choose from {SECTIONS}")
    warnings.simplefilter('ignore')
    out = ROOT / 'reports' / 'bench'; out.mkdir(parents=True, exist_ok=True)
    stem = 'feedback_quick' if a.quick else 'feedback'
    old = json.loads((out / f'{stem}.json').read_text()) if (out / f'{stem}.json').exists() else {}
    res = {k: v for k, v in old.items() if old.get('revision') == 2} | dict(
        benchmark='feedback', revision=2, quick=a.quick, python=platform.python_version(), numpy=np.__version__,
        cpus=os.cpu_count(), model=f'truth + log-odds noise N(0, {NOISE_SD}) (the deployed model where named)',
        config=portable(CONFIG), prior_weight={x: default_weight(x) for x in CONTACT_ACTIONS})
    t0, load = time.perf_counter(), list(os.getloadavg())
    run_sections(names, a.quick, res)
    secs = round(time.perf_counter() - t0, 1)
    res.setdefault('runs', {})[','.join(names)] = {'seconds': secs, 'load_avg_before': load,
                                                  'finished': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}
    res['figure'] = portable(plot(res, out / f'{stem}.png'))
    fd, tmp = tempfile.mkstemp(dir=out, suffix='.tmp')
    with os.fdopen(fd, 'w') as f: json.dump(res, f, indent=2)
    os.replace(tmp, out / f'{stem}.json')
    print(f"wrote {portable(out / f'{stem}.json')} ({', '.join(names)}) in {secs} s")
    goals = [c['goal_met'] for c in (res.get('coverage') or {}).values()]
    goals += [c['goal_met'] for c in (res.get('economy') or {}).values()]
    return 0 if all(goals) else 1


if __name__ == '__main__': sys.exit(main())
