"""Benchmark tables that are not in the package: a small telecom-style churn table driven by strong interactions.

Issue 15: on small tables whose churn comes from thresholds and their interactions, trees with more capacity than
Stage 2's tuned candidates (scikit-learn's `HistGradientBoostingClassifier()` at its defaults) win; two held-out
telecom tables showed it. `generate_interactions` reproduces that case in the open, with its ground truth: 20
telecom columns (minutes, calls and exact linear charge copies per period, plans, service calls, a 50-level state),
churn from a few threshold interactions on the log-odds scale x `sharpness`, and optionally repeated rows.
"""
import numpy as np
import pandas as pd

INTERACTION_STATES = tuple(f'S{i:02d}' for i in range(50))
CHARGE_RATES = (('day', 0.17), ('eve', 0.085), ('night', 0.045), ('intl', 0.27))


def interaction_churn_probability(df: pd.DataFrame, sharpness: float = 4.5) -> np.ndarray:
    "P(churn) under the known model: thresholds and their interactions, little else (log-odds scaled by `sharpness`)."
    bill = sum(df[f'{k}_minutes'] * rate for k, rate in CHARGE_RATES).to_numpy()
    intl, vm = (df.international_plan == 'yes').to_numpy(), (df.voice_mail_plan == 'yes').to_numpy()
    calls, day = df.customer_service_calls.to_numpy(), df.day_minutes.to_numpy()
    misfit = ((df.intl_minutes > 13) | (df.intl_calls < 3)).to_numpy()
    z = (-4.2 + 5.2 * (bill > 72) * (1 - 0.55 * vm)       # heavy users leave unless on a voice-mail bundle
         + 4.6 * ((calls >= 4) & (bill < 62))             # many service calls and a small bill
         + 4.4 * intl * misfit                            # an international plan that does not fit
         + 0.9 * (calls >= 2) * (day > 220)
         + 0.004 * (df.account_length.to_numpy() - 100))
    return 1 / (1 + np.exp(-sharpness * (z + 2.0) + 2.0))


def _customers(n: int, rng) -> pd.DataFrame:
    "`n` telecom customers: usage per period, plans, service calls, state and area code."
    intl, vm = rng.random(n) < 0.10, rng.random(n) < 0.27
    minutes = lambda mean, sd: np.round(np.maximum(rng.normal(mean, sd, n), 0), 1)
    df = pd.DataFrame({
        'account_length': rng.integers(1, 240, n), 'area_code': rng.choice(['408', '415', '510'], n, p=[.25, .5, .25]),
        'state': rng.choice(INTERACTION_STATES, n), 'international_plan': np.where(intl, 'yes', 'no'),
        'voice_mail_plan': np.where(vm, 'yes', 'no'), 'number_vmail_messages': np.where(vm, rng.poisson(29, n), 0),
        'day_minutes': minutes(180, 54), 'day_calls': rng.poisson(100, n),
        'eve_minutes': minutes(200, 50), 'eve_calls': rng.poisson(100, n),
        'night_minutes': minutes(200, 50), 'night_calls': rng.poisson(100, n),
        'intl_minutes': minutes(10, 2.8), 'intl_calls': rng.poisson(4.5, n),
        'customer_service_calls': rng.poisson(1.55, n)})
    for k, rate in CHARGE_RATES:
        df[f'{k}_charge'] = np.round(df[f'{k}_minutes'] * rate, 2)     # exact linear copies, as in the public tables
    return df


def generate_interactions(n: int = 3000, seed: int = 42, duplicates: int = 0,
                          sharpness: float = 4.5) -> tuple[pd.DataFrame, pd.DataFrame]:
    "A churn table of `n` customers (+ `duplicates` repeated rows, new ids) from strong interactions; and its truth."
    rng = np.random.default_rng(seed)
    df = _customers(n, rng)
    p = interaction_churn_probability(df, sharpness)
    df['churned'] = (rng.random(n) < p).astype(int)
    df.insert(0, 'customer_id', [f'I{i:06d}' for i in range(n)])
    truth = pd.DataFrame({'customer_id': df.customer_id, 'churn_probability': p})
    if duplicates:
        dup = rng.choice(n, duplicates, replace=False)
        extra = df.iloc[dup].assign(customer_id=[f'J{i:06d}' for i in range(duplicates)])
        df = pd.concat([df, extra], ignore_index=True)
        truth = pd.concat([truth, pd.DataFrame({'customer_id': extra.customer_id.to_numpy(),
                                                'churn_probability': p[dup]})], ignore_index=True)
    return df, truth
