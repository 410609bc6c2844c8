#!/usr/bin/python3
"""Reference values for the papers' metrics in tests/test_metrics.cpp: the multi-label protocol
of ML-GCN (Chen et al., CVPR 2019), written here with NumPy from the paper's formulas.

Usage: paper_metrics_reference.py DIR
For every DIR/<case>.in written by the C++ test, writes DIR/<case>.out.

<case>.in (whitespace separated):
    N C K
    N*C scores (row-major), N*C targets, C thresholds
<case>.out: lines "key v1 v2 ..." (nan where ML-GCN's code divides 0 by 0):
    all, top           CP CR CF1 OP OR OF1 classes_without_predictions, with the documented
                       conventions (precision 0 for a class never predicted, recall 0 for a class
                       without positives, OP from the true sum of Np, 0 for 0/0)
    mlgcn_all, mlgcn_top   OP OR OF1 CP CR CF1 exactly as ML-GCN's evaluation code computes them
                       (Np = 0 replaced by 1 in every sum, no other guard)
    without_positives  number of classes without a positive target
"""
import numpy as np

import case_files  # tests/python, beside this script


def fmt(key, values):
    return key + " " + " ".join("%.17g" % float(v) for v in np.atleast_1d(values)) + "\n"


def top_k_mask(scores, k):
    """True for the k highest scores of each row; ties go to the lower column index (a stable
    sort of the negated scores keeps equal scores in index order)."""
    n, c = scores.shape
    order = np.argsort(-scores, axis=1, kind="stable")[:, : min(k, c)]
    mask = np.zeros((n, c), dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask


def counts(pred, y):
    return (pred & y).sum(0).astype(np.float64), pred.sum(0).astype(np.float64), \
        y.sum(0).astype(np.float64)


def f1(p, r):
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def protocol(pred, y):
    """CP CR CF1 OP OR OF1 with the conventions the C++ documents."""
    nc, np_, ng = counts(pred, y)
    c = y.shape[1]
    per_p = np.divide(nc, np_, out=np.zeros(c), where=np_ > 0)
    per_r = np.divide(nc, ng, out=np.zeros(c), where=ng > 0)
    cp, cr = per_p.sum() / c, per_r.sum() / c
    op = nc.sum() / np_.sum() if np_.sum() > 0 else 0.0
    orr = nc.sum() / ng.sum() if ng.sum() > 0 else 0.0
    return [cp, cr, f1(cp, cr), op, orr, f1(op, orr), int((np_ == 0).sum())]


def mlgcn(pred, y):
    """The evaluation of ML-GCN's code, literally: OP OR OF1 CP CR CF1 (NaN on 0/0)."""
    nc, np_, ng = counts(pred, y)
    np_[np_ == 0] = 1
    with np.errstate(divide="ignore", invalid="ignore"):
        op = np.sum(nc) / np.sum(np_)
        orr = np.sum(nc) / np.sum(ng)
        of1 = 2 * op * orr / (op + orr)
        cp = np.sum(nc / np_) / y.shape[1]
        cr = np.sum(nc / ng) / y.shape[1]
        cf1 = 2 * cp * cr / (cp + cr)
    return [op, orr, of1, cp, cr, cf1]


def run_case(path_in, path_out):
    tok = open(path_in).read().split()
    n, c, k = int(tok[0]), int(tok[1]), int(tok[2])
    vals = np.array([float(v) for v in tok[3:]], dtype=np.float64)
    scores = vals[: n * c].reshape(n, c).astype(np.float32)
    y = vals[n * c: 2 * n * c].reshape(n, c) >= 0.5
    thr = vals[2 * n * c:].astype(np.float32)
    above = scores >= thr[None, :]
    pred_all = above
    pred_top = above & top_k_mask(scores, k)
    out = [fmt("all", protocol(pred_all, y)), fmt("top", protocol(pred_top, y)),
           fmt("mlgcn_all", mlgcn(pred_all, y)), fmt("mlgcn_top", mlgcn(pred_top, y)),
           fmt("without_positives", int((y.sum(0) == 0).sum()))]
    with open(path_out, "w") as fo:
        fo.writelines(out)


if __name__ == "__main__":
    case_files.run_folder(run_case)
