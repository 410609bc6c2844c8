#!/usr/bin/python3
"""Reference values for tests/test_metrics.cpp, computed with scikit-learn.

Usage: metrics_reference.py DIR
For every DIR/<case>.in written by the C++ test, writes DIR/<case>.out.

<case>.in (whitespace separated):
    N C zero_division(0|1) beta(0 = no threshold tuning check)
    N*C scores (row-major), N*C targets, C thresholds
<case>.out: lines "key v1 v2 ..." (nan for undefined):
    precision recall f1 support       per class, precision_recall_fscore_support(average=None)
    micro macro weighted              precision recall f1 with that average
    accuracy                          accuracy_score over all (sample, class) elements
    ap                                average_precision_score per class (nan: no positives)
    map ap_undefined                  macro average_precision_score over classes with positives
    best_fbeta                        per class, max over all thresholds t in the scores of
                                      fbeta_score(y, score >= t) (only when beta > 0)
"""
import warnings

import numpy as np
from sklearn.metrics import (accuracy_score, average_precision_score, fbeta_score,
                             precision_recall_fscore_support)

import case_files  # tests/python, beside this script

warnings.filterwarnings("ignore")


def fmt(key, values):
    return key + " " + " ".join("%.17g" % float(v) for v in np.atleast_1d(values)) + "\n"


def run_case(path_in, path_out):
    tok = open(path_in).read().split()
    n, c, zd, beta = int(tok[0]), int(tok[1]), int(tok[2]), float(tok[3])
    vals = np.array([float(v) for v in tok[4:]], dtype=np.float64)
    scores = vals[: n * c].reshape(n, c).astype(np.float32)
    y = (vals[n * c: 2 * n * c].reshape(n, c) >= 0.5).astype(np.int64)
    thr = vals[2 * n * c:].astype(np.float32)
    pred = (scores >= thr[None, :]).astype(np.int64)

    out = []
    p, r, f, s = precision_recall_fscore_support(y, pred, average=None, zero_division=zd)
    out += [fmt("precision", p), fmt("recall", r), fmt("f1", f), fmt("support", s)]
    for avg in ("micro", "macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y, pred, average=avg, zero_division=zd)
        out.append(fmt(avg, [p, r, f]))
    out.append(fmt("accuracy", accuracy_score(y.ravel(), pred.ravel())))

    defined = y.sum(axis=0) > 0
    ap = np.full(c, np.nan)
    for j in range(c):
        if defined[j]:
            ap[j] = average_precision_score(y[:, j], scores[:, j].astype(np.float64))
    out.append(fmt("ap", ap))
    if defined.any():
        m = average_precision_score(y[:, defined], scores[:, defined].astype(np.float64),
                                    average="macro")
    else:
        m = np.nan
    out.append(fmt("map", m))
    out.append(fmt("ap_undefined", int((~defined).sum())))

    if beta > 0:
        best = np.full(c, np.nan)
        for j in range(c):
            if not defined[j]:
                continue
            best[j] = max(fbeta_score(y[:, j], (scores[:, j] >= t).astype(np.int64), beta=beta)
                          for t in np.unique(scores[:, j]))
        out.append(fmt("best_fbeta", best))
    with open(path_out, "w") as fo:
        fo.writelines(out)


if __name__ == "__main__":
    case_files.run_folder(run_case)
