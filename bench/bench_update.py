"""The Bayesian update of gamma (bayespilot.feedback): its speed on a 20 000-customer round against the dense exact
grid it approximates, and the coverage of its 90 % intervals over many seeds, calibration estimated on the untreated
and integrated out ('fit', the default), estimated jointly with the treated ('joint') and assumed ('identity'), on a
calibrated and on a miscalibrated model, starting from wrong priors.

Writes reports/bench/update.json and update.png (update_quick.* with --quick).
Usage: python bench/bench_update.py [--quick]
"""
import argparse, json, platform, statistics, sys, time
from pathlib import Path
import numpy as np
from scipy import special, stats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bayespilot.config import DecisionSettings                                       # noqa: E402
from bayespilot.feedback import (calibration_nodes, fit_calibration, grid_summary, logit, mixture_logpost,  # noqa: E402
                                 nonchurned_loglik, profile_calibration, gamma_posterior, update_beliefs)

TRUE = {'review': 0.1, 'escalate': 0.3}
PRIORS = {'review': (6.0, 14.0), 'escalate': (2.0, 18.0)}      # wrong: mean 0.3 for a 0.1 action, 0.1 for a 0.3 one


def round_data(seed, n=20_000, cal=(0.0, 1.0), share=0.1):
    "One round: the policy contacts p > 0.3 (review) / p > 0.55 (escalate), `share` held out; true churn c(p)."
    r = np.random.default_rng(seed)
    p = r.beta(2, 4, n); c = special.expit(cal[0] + cal[1] * logit(p))
    pol = np.where(p > 0.55, 'escalate', np.where(p > 0.3, 'review', 'monitor'))
    arm = np.where((pol != 'monitor') & (r.random(n) < share), 'holdout', pol)
    g = np.select([arm == 'review', arm == 'escalate'], [TRUE['review'], TRUE['escalate']], 0.0)
    return p, r.random(n) < c * (1 - g), arm, pol


def settings(priors=None):
    "The default decision settings with the wrong priors (or `priors`)."
    ds, priors = DecisionSettings(), priors or PRIORS
    return ds.model_copy(update={'actions': {a: s.model_copy(update=dict(zip(('alpha', 'beta'), priors[a])))
                                             for a, s in ds.actions.items()}})


def dense_posterior(p_u, y_u, p_t, y_t, alpha, beta, calibration='fit'):
    "The baseline: the exact likelihood at every grid cell (no interpolation), same window; 'fit' on 15 x 15 nodes."
    ref = gamma_posterior(p_u, y_u, p_t, y_t, alpha, beta, calibration)
    lt, yt = logit(p_t), np.asarray(y_t, bool)
    grid, prior = ref['grid'], yt.sum() * np.log1p(-ref['grid']) + stats.beta.logpdf(ref['grid'], alpha, beta)
    if calibration == 'joint':
        th_u, prec_u = fit_calibration(logit(p_u), np.asarray(y_u, float))
        return grid_summary(grid, profile_calibration(lt[yt], lt[~yt], grid, th_u, prec_u)[0] + prior)
    thetas, w = calibration_nodes(logit(p_u), np.asarray(y_u, float), n=15)
    return grid_summary(grid, mixture_logpost(nonchurned_loglik(lt[~yt], grid, thetas) + prior, w))


def timed(fn, repeats):
    "Median seconds of `repeats` calls."
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def speed(repeats):
    "Median time of update_beliefs on a 20 000-customer round and of the dense exact grid; their agreement."
    p, y, arm, pol = round_data(0, cal=(-0.3, 0.9)); ds = settings()
    t_upd = timed(lambda: update_beliefs(p, y, arm, ds, policy_action=pol), repeats)
    un = np.isin(arm, ('holdout', 'monitor')); out = {}
    for a in TRUE:
        t = arm == a
        for cal in ('fit', 'joint'):
            args = (p[un], y[un], p[t], y[t], *PRIORS[a], cal)
            fast, dense = gamma_posterior(*args), dense_posterior(*args)
            o = out[f'{a}_{cal}'] = {
                'n_treated': int(t.sum()), 'seconds_update': timed(lambda: gamma_posterior(*args), repeats),
                'seconds_dense_baseline': timed(lambda: dense_posterior(*args), min(repeats, 3)),
                'max_abs_difference': max(abs(fast['mean'] - dense['mean']), abs(fast['sd'] - dense['sd']),
                                          *np.abs(np.subtract(fast['interval'], dense['interval'])))}
            o['speedup'] = o['seconds_dense_baseline'] / o['seconds_update']
    return {'customers': len(p), 'seconds_update_beliefs_both_actions': t_upd, 'per_action': out, 'repeats': repeats,
            'repeats_dense_baseline': min(repeats, 3)}


def coverage(seeds):
    "Share of seeds whose 90 % interval covers the true gamma, per (model calibration, calibration method, action)."
    flat = settings({a: (1.0, 1.0) for a in TRUE})
    out, runs = {}, [('calibrated model', (0.0, 1.0), m, settings()) for m in ('fit', 'joint', 'identity')]
    runs += [('miscalibrated model (a=-0.3, b=0.9)', (-0.3, 0.9), m, settings()) for m in ('fit', 'joint', 'identity')]
    runs += [('calibrated model, flat prior (control)', (0.0, 1.0), 'fit', flat)]
    for name, cal, method, ds in runs:
        hits = {a: 0 for a in TRUE}; means = {a: [] for a in TRUE}
        for s in range(seeds):
            p, y, arm, pol = round_data(1000 + s, cal=cal)
            bel = update_beliefs(p, y, arm, ds, policy_action=pol, calibration=method)
            for a, g in TRUE.items():
                hits[a] += bel[a]['interval'][0] <= g <= bel[a]['interval'][1]; means[a].append(bel[a]['mean'])
        out[f'{name}, {method}'] = {a: {'coverage': hits[a] / seeds, 'mean_posterior_mean': float(np.mean(means[a])),
                                        'true': TRUE[a]} for a in TRUE}
    return out


def plot(cov, path):
    "Coverage per setting and action, with the 90 % target."
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    fig = Figure(figsize=(10, 4.2), layout='constrained'); FigureCanvasAgg(fig); ax = fig.subplots()
    keys, x = list(cov), np.arange(len(cov))
    for j, a in enumerate(TRUE):
        ax.bar(x + (j - 0.5) * 0.38, [cov[k][a]['coverage'] for k in keys], 0.38, label=f'{a} (true {TRUE[a]})')
    ax.axhline(0.9, ls='--', c='k', lw=1, label='nominal 0.90'); ax.axhline(0.85, ls=':', c='r', lw=1, label='0.85 bar')
    ax.set_xticks(x, [k.replace(', ', '\n') for k in keys], fontsize=7); ax.set_ylim(0, 1.05)
    ax.set(ylabel='share of seeds covering the truth',
           title='90 % intervals of gamma after one 20 000-customer round (wrong priors, but the control)')
    ax.legend(fontsize=8, loc='lower left')
    fig.savefig(path, dpi=110)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help='8 seeds and 3 repeats (a smoke run, not for figures)')
    a = ap.parse_args(argv)
    seeds, repeats = (8, 3) if a.quick else (40, 7)
    res = {'benchmark': 'update', 'quick': a.quick, 'machine': {'python': platform.python_version(),
           'cpus': __import__('os').cpu_count()}, 'priors': {k: list(v) for k, v in PRIORS.items()}, 'true_gamma': TRUE,
           'holdout_share': 0.1, 'seeds': seeds, 'speed': speed(repeats), 'coverage': coverage(seeds)}
    out = ROOT/'reports'/'bench'; out.mkdir(parents=True, exist_ok=True)
    stem = 'update_quick' if a.quick else 'update'
    (out/f'{stem}.json').write_text(json.dumps(res, indent=2) + '\n')
    plot(res['coverage'], out/f'{stem}.png')
    print(json.dumps({'speed': res['speed'], 'coverage': {k: {a: v['coverage'] for a, v in c.items()}
                                                          for k, c in res['coverage'].items()}}, indent=1))


if __name__ == '__main__': main()
