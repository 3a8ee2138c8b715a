"""Experimental variants of `Stage2Classifier` for the Stage 2 benchmark (`bench_stage2.py --variant NAME`).

They show what a change to Stage 2's procedure would buy under the same CV protocol; nothing here is part of the
package. `refit`: select and choose the calibration as `Stage2Classifier` does, then refit the selected candidate on
ALL rows it was given (the default fit leaves the calibration share, 25 %, out of the model), with the chosen
calibration cross-fitted (`CalibratedClassifierCV(cv=5, ensemble=False)`: out-of-fold scores train the calibrator,
the model itself is fitted once on every row). `blend`: as shipped, but the mean of all calibrated candidates'
probabilities is one more option, chosen when its out-of-fold log loss on the calibration split beats the best single
candidate's. `blend_refit`: `blend`, then the chosen model(s) refitted on all rows as in `refit`.

Stage 2 itself now refits on tables below 50 000 rows (`stage2.refit = "auto"`, out-of-fold selection); the variants
run with that built-in refit switched off (`refit=False`, set by bench_stage2.py) so they compare against the
calibration-split procedure they were written for.
"""
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from bayespilot.features import _as_frame
from bayespilot.stage2 import Stage2Classifier


def refit(est, name, X, y):
    "Candidate `name` of fitted Stage 2 `est` refitted on all of (X, y) with its chosen calibration cross-fitted (5 folds)."
    X, y01 = _as_frame(X).reset_index(drop=True), (np.asarray(y) == est.classes_[1]).astype(int)
    c = est.candidates_[name]
    pipe, method = clone(c.fit.model), c.choice.method
    with threadpool_limits(limits=est.n_jobs):
        if method == 'none': return pipe.fit(X, y01)
        cv = StratifiedKFold(5, shuffle=True, random_state=est.random_state)
        return CalibratedClassifierCV(pipe, method=method, cv=cv, ensemble=False).fit(X, y01)


class Stage2Refit(Stage2Classifier):
    "Stage2Classifier whose selected candidate is refitted on all rows, with its calibration cross-fitted."

    def fit(self, X, y):
        "Stage 2 selection as usual, then the selected pipeline refitted on every row (calibration by 5-fold cross-fitting)."
        super().fit(X, y)
        self.model_ = refit(self, self.selected_, X, y)
        return self


class MeanProba(ClassifierMixin, BaseEstimator):
    "Already-fitted classifiers averaged: P(class 1) is the mean of their predict_proba."
    def __init__(self, models=()): self.models = models

    def predict_proba(self, X): return np.mean([m.predict_proba(X) for m in self.models], axis=0)


class Stage2Blend(Stage2Classifier):
    "Stage2Classifier that also considers the mean of all calibrated candidates, by calibration-split out-of-fold log loss."

    def fit(self, X, y):
        "Stage 2 as usual; then the blend replaces the selected model when its out-of-fold log loss is lower."
        super().fit(X, y)
        ok = {n: c for n, c in self.candidates_.items() if c.ok}
        oof = {n: c.choice.oof[c.choice.method] for n, c in ok.items()}
        y_cal = _calibration_labels(self, X, y)
        ll = lambda p: float(log_loss(y_cal, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]))
        single, blend = ll(oof[self.selected_]), ll(np.mean(list(oof.values()), axis=0))
        self.blend_log_loss_, self.single_log_loss_ = blend, single
        if len(ok) > 1 and blend < single:
            self.model_, self.selected_ = MeanProba([c.model for c in ok.values()]), 'blend:' + '+'.join(ok)
        return self


def _calibration_labels(est, X, y):
    "The 0/1 labels of the calibration split Stage2Classifier.fit used (same seeded split)."
    from bayespilot.data import split_indices
    y01 = (np.asarray(y) == est.classes_[1]).astype(int)
    _, _, cal = split_indices(y01, est.calibration_size, 0.0, est.random_state)
    return y01[cal]


class Stage2BlendRefit(Stage2Blend):
    "`blend`, then whatever was chosen (one candidate or all of them) refitted on all rows like `refit`."

    def fit(self, X, y):
        "Blend-or-single choice as in Stage2Blend, then refit the chosen model(s) on every row."
        super().fit(X, y)
        names = self.selected_.removeprefix('blend:').split('+')
        models = [refit(self, n, X, y) for n in names]
        self.model_ = models[0] if len(models) == 1 else MeanProba(models)
        return self


VARIANTS = {'refit': Stage2Refit, 'blend': Stage2Blend, 'blend_refit': Stage2BlendRefit}
