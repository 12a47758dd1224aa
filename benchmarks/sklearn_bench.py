"""bpgpu.sklearn against scikit-learn's own MLP, at equal epochs, in one process.

    python -m benchmarks.sklearn_bench [--repeat 5] [--backends numpy] [--out DIR]

On scikit-learn's bundled data sets (standardised; 70/30 split), each estimator fits the
same number of epochs (``tol=0`` and ``n_iter_no_change`` above ``max_iter``, so neither
stops early) with the same settings (Adam, ``hidden_layer_sizes=(100,)``, ``alpha``,
batch ``"auto"``, float64). Rounds alternate between the peers; the best round's fit
time counts, and the held-out accuracy (R^2 for regression) of every round's model is
averaged. Writes ``sklearn-<tag>.json`` and ``.md``; the ratio is scikit-learn's fit time
over bpgpu's (above 1: bpgpu is faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

from .runner import command_line, machine, provenance, write_report

SETS = {
    "digits": ("load_digits", "classification", 200),
    "breast_cancer": ("load_breast_cancer", "classification", 200),
    "wine": ("load_wine", "classification", 300),
    "diabetes": ("load_diabetes", "regression", 300),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.sklearn_bench", description=__doc__.split("\n")[0]
    )
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--backends", default="numpy")
    p.add_argument(
        "--tag", default=None, help="file name tag (default: cpu, or gpu with a CUDA backend)"
    )
    p.add_argument("--out", default="bench-results")
    args = p.parse_args(argv)
    import sklearn
    from sklearn import datasets
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.preprocessing import StandardScaler

    from bpgpu.sklearn import BPClassifier, BPRegressor

    rows = []
    for name, (loader, task, epochs) in SETS.items():
        X, y = getattr(datasets, loader)(return_X_y=True)
        strat = y if task == "classification" else None
        X_tr, X_te, y_tr, y_te = train_test_split(
            X, y, test_size=0.3, random_state=0, stratify=strat
        )
        scaler = StandardScaler().fit(X_tr)
        X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
        kw = dict(max_iter=epochs, tol=0.0, n_iter_no_change=epochs + 1, learning_rate_init=0.001)
        theirs_cls, ours_cls = (
            (MLPClassifier, BPClassifier)
            if task == "classification"
            else (MLPRegressor, BPRegressor)
        )
        peers = {"scikit-learn": lambda seed, c=theirs_cls, kw=kw: c(random_state=seed, **kw)}
        for b in args.backends.split(","):
            peers[f"bpgpu[{b}]"] = lambda seed, b=b, c=ours_cls, kw=kw: c(
                random_state=seed, backend=b, **kw
            )
        times = {k: [] for k in peers}
        scores = {k: [] for k in peers}
        for r in range(args.repeat):
            for peer, make in peers.items():
                est = make(r)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    t0 = time.perf_counter()
                    est.fit(X_tr, y_tr)
                    times[peer].append(time.perf_counter() - t0)
                assert est.n_iter_ == epochs, (peer, est.n_iter_)
                scores[peer].append(est.score(X_te, y_te))
        base = min(times["scikit-learn"])
        for peer in peers:
            row = {
                "data": name,
                "task": task,
                "samples": len(X_tr),
                "features": X.shape[1],
                "epochs": epochs,
                "peer": peer,
                "fit_s": min(times[peer]),
                "median_fit_s": statistics.median(times[peer]),
                "score": statistics.mean(scores[peer]),
                "score_std": statistics.pstdev(scores[peer]),
                "speedup_vs_sklearn": base / min(times[peer]),
            }
            rows.append(row)
            print(
                f"{name:<14} {peer:<14} fit {row['fit_s']:7.3f} s  "
                f"{'accuracy' if task == 'classification' else 'R^2'} {row['score']:.4f} "
                f"(+-{row['score_std']:.4f})  {row['speedup_vs_sklearn']:.2f}x sklearn",
                flush=True,
            )
    info = machine()
    cmd = command_line("benchmarks.sklearn_bench", argv)
    report = {"machine": info, "sklearn": sklearn.__version__, "command": cmd, "rows": rows}
    tag = args.tag or (
        "gpu"
        if any(b.startswith(("cupy", "torch:cuda")) for b in args.backends.split(","))
        else "cpu"
    )
    stem = os.path.join(args.out, f"sklearn-{tag}")
    lines = [
        f"# bpgpu.sklearn vs scikit-learn {sklearn.__version__} at equal epochs",
        "",
        provenance(info, cmd),
        "",
        "Adam, hidden_layer_sizes=(100,), batch 'auto', float64, standardised inputs, 70/30 "
        "split. Fit time: best of the rounds; score: mean (std) over the rounds' seeds, "
        "held-out accuracy or R^2. Speed-up: scikit-learn's best fit time over the peer's.",
        "",
        "| data | task | epochs | peer | fit (s) | score | speed-up vs scikit-learn |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['data']} ({r['samples']}x{r['features']}) | {r['task']} | {r['epochs']} "
        f"| {r['peer']} | {r['fit_s']:.3f} | {r['score']:.4f} ({r['score_std']:.4f}) "
        f"| {r['speedup_vs_sklearn']:.2f}x |"
        for r in rows
    ]
    write_report(stem, report, "\n".join(lines) + "\n")
    print(f"written: {stem}.json, {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
