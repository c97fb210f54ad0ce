"""The paper in miniature: noise -> train -> score on Shapes-N, on a laptop CPU, compared with the paper.

Builds Shapes-N (``hf-noisy build shapes-n``) with the paper's levels and Table 1's single-op ablation configs,
trains ``train/train_mask2former.py --config cpu-shapes`` on each, scores on the clean validation split, and
writes into ``--out``:

* ``results.md`` / ``results.json``: mask AP, Boundary AP and box AP (mean +- std over seeds) per run group,
  the paper's findings (a)-(d) checked here with their effect sizes against the seed std, the paper's own
  numbers (``shared/reference/paper/tables.json``) beside them, and each run's CPU seconds;
* ``levels.png`` (AP against level, mask and boundary) and ``ablation.png`` (AP per single op);
* with ``--diagnostics``: ``instance_losses.png`` and the loss separability AUROCs of the last seed's ``hard`` run
  (instance losses recorded every 10 steps)
  (``hf-noisy analyze losses``), ``confidence.png`` across the levels (``hf-noisy analyze confidence``);
* with ``--audit``: a two-fold cross-fit on the ``hard`` train split (``--fold K/2 --predict-split train``),
  ``hf-noisy audit`` on the out-of-sample predictions, and the AUROC of its scores against the known noise
  provenance, beside cleanlab's object-detection scores on the same predictions.

Runs go ``--jobs`` at a time, each in one thread (``OMP_NUM_THREADS=1``), so numbers do not depend on ``--jobs``.
A finished run (its ``model/metrics.json`` exists) is not trained again: rerunning continues an interrupted
sweep. Everything is seeded: the generator (``--generator-seed``), the noise (seed 1) and each run (``--seeds``).

    python benchmarks/paper_in_miniature.py --out miniature --quick        # one seed, levels + ablation + losses
    python benchmarks/paper_in_miniature.py --out miniature --seeds 0 1 2 --diagnostics --audit
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("HF_NOISY_SHARED", REPO.parent / "shared"))
TRAIN = REPO / "train" / "train_mask2former.py"

LEVELS = ("clean", "easy", "medium", "hard")
#: Table 1's single-op ablation at the hard level's parameters: every instance gets the op (prob 1)
ABLATION = {
    "dilate": {"spatial": [{"op": "dilate", "prob": 1.0, "kernel": 7}]},
    "erode": {"spatial": [{"op": "erode", "prob": 1.0, "kernel": 7}]},
    "opening": {"spatial": [{"op": "opening", "prob": 1.0, "kernel": 7}]},
    "localization": {"spatial": [{"op": "localization", "prob": 1.0, "sigma": 4}]},
    "approximation": {"spatial": [{"op": "approximation", "prob": 1.0, "tolerance": 15}]},
    "class-only": {"class_noise": {"kind": "symmetric", "rate": 0.4}},
}
#: Table 1's rows for the ablation configs (Mask R-CNN R50, high severity)
PAPER_ABLATION_ROW = {"dilate": "dilation", "erode": "erosion", "opening": "opening", "localization": "localization",
                      "approximation": "approximation"}
METRICS = (("segm", "mask AP"), ("boundary", "Boundary AP"), ("bbox", "box AP"))


def build(out: Path, args: argparse.Namespace) -> Path:
    """Shapes-N with the levels and the ablation configs (images stored once), built unless already there."""
    dataset = out / "shapes-n"
    if (dataset / "hf_noisy_benchmark.json").is_file():
        return dataset
    import yaml

    specs = out / "specs"
    specs.mkdir(parents=True, exist_ok=True)
    configs = list(LEVELS)
    for name, body in ABLATION.items():
        path = specs / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"version": 1, "seed": 1, **body}, sort_keys=False), encoding="utf-8")
        configs.append(f"{name}={path}")
    command = [sys.executable, "-m", "hf_noisy.cli", "build", "shapes-n", "--out", str(dataset),
               "--levels", ",".join(configs), "--image-storage", "shared", "--num-train", str(args.num_train),
               "--num-val", str(args.num_val), "--generator-seed", str(args.generator_seed), "--no-progress"]
    subprocess.run(command, check=True)
    return dataset


def train(run: dict, dataset: Path, out: Path, args: argparse.Namespace) -> dict:
    """One training run (a subprocess, one thread); returns the run with its metrics and CPU seconds."""
    folder = out / "runs" / run["name"]
    done = folder / "model" / "metrics.json"
    if not done.is_file() and args.report_only:
        return {**run, "missing": True}
    if not done.is_file():
        command = [sys.executable, str(TRAIN), "--config", args.config, "--dataset", str(dataset),
                   "--dataset-config", run["config"], "-o", str(folder), "--seed", str(run["seed"]),
                   "--class-loss", run["loss"], "--overwrite", *run.get("extra", [])]
        if args.steps:
            command += ["--max-steps", str(args.steps)]
        if "--predictions-out" not in run.get("extra", []):
            command += ["--predictions-out", str(folder / "val_results.json")]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "log.txt", "w", encoding="utf-8") as log:
            started = time.perf_counter()
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
            _, status, usage = os.wait4(process.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            print(f"  {run['name']}: FAILED (exit {os.waitstatus_to_exitcode(status)}), see {folder / 'log.txt'}",
                  flush=True)
            return {**run, "failed": str(folder / "log.txt")}
        (folder / "cost.json").write_text(json.dumps({"cpu_seconds": usage.ru_utime + usage.ru_stime,
                                                      "wall_seconds": time.perf_counter() - started}))
        print(f"  {run['name']}: done", flush=True)
    metrics = json.loads(done.read_text(encoding="utf-8"))["metrics"]
    cost = json.loads((folder / "cost.json").read_text()) if (folder / "cost.json").is_file() else {}
    return {**run, "folder": str(folder), "cpu_seconds": cost.get("cpu_seconds"),
            **{f"{key}_{stat}": metrics[key][stat] for key, _ in METRICS for stat in ("AP", "AP50", "AR100")
               if stat in metrics[key]}}


def plan(args: argparse.Namespace) -> list[dict]:
    """Every run: the levels x seeds, the ablation and the class losses at hard (one seed with --quick)."""
    seeds = args.seeds[:1] if args.quick else args.seeds
    runs = [{"name": f"{level}-ce-s{seed}", "group": level, "config": level, "loss": "ce", "seed": seed}
            for level in LEVELS for seed in seeds]
    runs += [{"name": f"{op}-ce-s{seed}", "group": f"ablation:{op}", "config": op, "loss": "ce", "seed": seed}
             for op in ABLATION for seed in seeds[:args.ablation_seeds]]
    runs += [{"name": f"hard-{loss}-s{seed}", "group": f"hard+{loss}", "config": "hard", "loss": loss, "seed": seed}
             for loss in ("sce", "gce") for seed in seeds[:args.loss_seeds]]
    if args.diagnostics:  # recording draws no random numbers: the run is the same with or without it
        next(r for r in runs if r["name"] == f"hard-ce-s{seeds[-1]}")["extra"] = [
            "--log-instance-losses", "--log-steps", "10"]  # ~5,000 instance rows over 3,000 steps
    if args.audit:
        runs += [{"name": f"hard-fold{k}", "group": "audit", "config": "hard", "loss": "ce", "seed": seeds[0],
                  "extra": ["--fold", f"{k}/2", "--predict-split", "train",
                            "--predictions-out", str(args.out / "runs" / f"hard-fold{k}" / "heldout.json")]}
                 for k in range(2)]
    return runs


def summarise(results: list[dict]) -> dict[str, dict]:
    """group -> {metric: (mean, std, n)} over its seeds (std: sample std, 0 for one seed)."""
    groups: dict[str, list[dict]] = {}
    for r in results:
        groups.setdefault(r["group"], []).append(r)
    out = {}
    for group, rows in groups.items():
        stats = {}
        for key, _ in METRICS:
            values = np.array([r[f"{key}_AP"] for r in rows], float)
            stats[key] = (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0, len(values))
        stats["cpu_seconds"] = float(np.mean([r["cpu_seconds"] or 0 for r in rows]))
        out[group] = stats
    return out


def findings(summary: dict, paper: dict) -> list[dict]:
    """The paper's qualitative findings (a)-(d), checked on the summary, with effect sizes against seed std."""
    def mean(group: str, key: str) -> float:
        return summary[group][key][0]

    def noise(*groups: str, key: str) -> float:
        """The pooled seed std of the groups (0 when each has one seed: no estimate)."""
        stds = [summary[g][key][1] for g in groups if summary[g][key][2] > 1]
        return float(np.sqrt(np.mean(np.square(stds)))) if stds else float("nan")

    out = []
    for key, label in METRICS[:2]:
        values = [mean(level, key) for level in LEVELS]
        steps = [values[i] - values[i + 1] for i in range(3)]
        sd = noise(*LEVELS, key=key)
        out.append({"finding": f"(a) {label} falls clean > easy > medium > hard",
                    "holds": all(s > 0 for s in steps),
                    "evidence": f"{' > '.join(f'{v:.3f}' for v in values)}; drops {', '.join(f'{s:+.3f}' for s in steps)}"
                                f"; seed std {sd:.3f}",
                    "paper": "Table 2, Mask2Former R50: " + " > ".join(f"{paper['m2f'][level][key]:.1f}" for level in LEVELS)})
    rel = {key: 1 - mean("hard", key) / mean("clean", key) if mean("clean", key) > 0 else float("nan")
           for key in ("segm", "boundary")}
    paper_rel = {key: 1 - paper["m2f"]["hard"][key] / paper["m2f"]["clean"][key] for key in ("segm", "boundary")}
    out.append({"finding": "(b) the relative Boundary AP drop at hard is at least the relative mask AP drop",
                "holds": rel["boundary"] >= rel["segm"],
                "evidence": f"boundary -{rel['boundary']:.1%}, mask -{rel['segm']:.1%}",
                "paper": f"Mask2Former R50: boundary -{paper_rel['boundary']:.1%}, mask -{paper_rel['segm']:.1%}"})
    if all(f"ablation:{op}" in summary for op in ("dilate", "erode", "opening")):
        drop = {op: mean("clean", "segm") - mean(f"ablation:{op}", "segm") for op in ("dilate", "erode", "opening")}
        bdrop = {op: mean("clean", "boundary") - mean(f"ablation:{op}", "boundary") for op in ("dilate", "erode", "opening")}
        sd = noise("clean", "ablation:dilate", "ablation:erode", "ablation:opening", key="segm")
        table1 = paper["table_1"]
        theirs = {op: table1["clean"][0] - table1[row][0] for op, row in
                  (("dilate", "dilation"), ("erode", "erosion"), ("opening", "opening"))}
        where = f"seed std {sd:.3f}"
        out.append({"finding": "(c) erosion costs more than dilation (Table 1)",
                    "holds": drop["erode"] > drop["dilate"],
                    "evidence": f"mask AP drop vs clean: erode {drop['erode']:+.3f}, dilate {drop['dilate']:+.3f}; "
                                f"Boundary AP: erode {bdrop['erode']:+.3f}, dilate {bdrop['dilate']:+.3f}; {where}",
                    "paper": f"Mask R-CNN R50, high severity, mask AP drop: erode {theirs['erode']:+.1f}, "
                             f"dilate {theirs['dilate']:+.1f}"})
        out.append({"finding": "(c) opening costs about nothing (Table 1)",
                    "holds": abs(drop["opening"]) < max(0.25 * drop["erode"], 2 * sd if sd == sd else 0.01),
                    "evidence": f"mask AP drop vs clean: opening {drop['opening']:+.3f}, Boundary AP "
                                f"{bdrop['opening']:+.3f}; {where}",
                    "paper": f"Mask R-CNN R50, high severity: opening {theirs['opening']:+.1f}"})
    if "hard+sce" in summary:
        sd = noise("hard", "hard+sce", key="segm")
        gain = {key: mean("hard+sce", key) - mean("hard", key) for key in ("segm", "boundary")}
        gce = (f"; GCE {mean('hard+gce', 'segm') - mean('hard', 'segm'):+.3f} mask AP" if "hard+gce" in summary else "")
        out.append({"finding": "(d) SCE against CE at hard (the paper: SCE +0.4 mask AP, +0.1 Boundary AP)",
                    "holds": gain["segm"] > 0,
                    "evidence": f"SCE - CE: mask {gain['segm']:+.3f}, boundary {gain['boundary']:+.3f}; seed std {sd:.3f}{gce}",
                    "paper": "Table 8, Mask R-CNN R50 hard: CE 28.4 / 16.3, SCE 28.8 / 16.4"})
    return out


def paper_numbers() -> dict:
    """The rows of tables.json this comparison uses (percent)."""
    tables = json.loads((SHARED / "reference" / "paper" / "tables.json").read_text(encoding="utf-8"))
    row = next(r for r in tables["table_2"]["rows"] if r["benchmark"] == "coco-n" and r["model"] == "Mask2Former R50")
    values = row["values"]
    m2f = {level: {"segm": values[2 * i], "boundary": values[2 * i + 1]} for i, level in enumerate(LEVELS)}
    table1 = {r["noise"]: r["values"][4:6] for r in tables["table_1"]["rows"]}  # high severity: AP, APb
    return {"m2f": m2f, "table_1": table1}


def figures(summary: dict, out: Path, paper: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    x = np.arange(len(LEVELS))
    for key, label in METRICS[:2]:
        mean = np.array([summary[level][key][0] for level in LEVELS])
        std = np.array([summary[level][key][1] for level in LEVELS])
        axes[0].errorbar(x, mean, yerr=std, marker="o", capsize=3, label=label)
        theirs = np.array([paper["m2f"][level][key] for level in LEVELS])
        line, = axes[1].plot(x, mean / mean[0] if mean[0] > 0 else mean, marker="o", label=f"{label}, Shapes-N")
        axes[1].plot(x, theirs / theirs[0], marker="s", linestyle="--", color=line.get_color(),
                     label=f"{label}, COCO-N M2F R50 (paper)")
    axes[0].set_title("Shapes-N, cpu-shapes: AP on clean validation")
    axes[1].set_title("AP relative to clean: here and in the paper")
    for ax in axes:
        ax.set_xticks(x, LEVELS)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("AP")
    axes[1].set_ylabel("AP / clean AP")
    fig.tight_layout()
    fig.savefig(out / "levels.png", dpi=120)
    plt.close(fig)

    ops = [op for op in ABLATION if f"ablation:{op}" in summary]
    if ops:
        fig, ax = plt.subplots(figsize=(9, 4))
        names = ["clean", *ops]
        groups = ["clean", *(f"ablation:{op}" for op in ops)]
        width = 0.38
        for k, (key, label) in enumerate(METRICS[:2]):
            ax.bar(np.arange(len(names)) + (k - 0.5) * width, [summary[g][key][0] for g in groups], width,
                   yerr=[summary[g][key][1] for g in groups], capsize=2, label=label)
        ax.set_xticks(np.arange(len(names)), names)
        ax.set_ylabel("AP")
        ax.set_title("Single-op ablation at the hard parameters (every instance; class-only: 40% symmetric)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "ablation.png", dpi=120)
        plt.close(fig)


def diagnostics(out: Path, results: list[dict]) -> dict:
    """Loss separability of the hard run and confidence across the levels, through hf-noisy's own commands."""
    from hf_noisy.analysis import analyze_confidence, analyze_losses

    report = {}
    run = next((Path(r["folder"]) for r in results if "--log-instance-losses" in r.get("extra", [])), None)
    if run is not None:
        losses = analyze_losses(run, figure=out / "instance_losses.png", by="step", num_buckets=3)
        report["separability"] = losses.separability
        report["losses_table"] = losses.format_table()
    files, names = [], []
    for level in LEVELS:
        found = sorted((out / "runs").glob(f"{level}-ce-s*/val_results.json"))
        if found:
            files.append(found[0])
            names.append(level)
    if files:
        confidence = analyze_confidence(files, names=names, figure=out / "confidence.png")
        report["confidence"] = [{k: v for k, v in r.items() if k not in ("scores", "path")} for r in confidence.runs]
    return report


def audit(out: Path, dataset: Path, args: argparse.Namespace) -> dict:
    """Cross-fitted audit of the hard train split against its known provenance, beside cleanlab."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_audit import auroc, cleanlab_scores

    from hf_noisy.audit import AuditConfig, audit_coco
    from hf_noisy.hub import export_coco

    noisy = export_coco(dataset, "hard", "train", out / "hard_train.json", overwrite=True)
    predictions = [p for k in range(2) for p in json.loads((out / "runs" / f"hard-fold{k}" / "heldout.json").read_text())]
    result = audit_coco(noisy, predictions, AuditConfig())
    score = {a["id"]: a["score"] for a in result["annotations"]}
    anns = [a for a in noisy["annotations"] if not a.get("iscrowd", 0)]
    ours = np.array([score[a["id"]] for a in anns])
    changed = np.array([bool(a.get("class_flipped")) or a.get("noise_op", "none") != "none" for a in anns])
    clean = ~changed
    report = {"annotations": len(anns), "changed": int(changed.sum()), "predictions": len(predictions)}
    scorers = {"hf-noisy audit": ours}
    try:
        scorers["cleanlab (boxes)"] = cleanlab_scores(noisy, predictions, [a["id"] for a in anns], threshold=0.5)
    except ImportError:
        report["cleanlab"] = "not installed (pip install cleanlab)"
    for name, scores in scorers.items():
        row = {"overall": auroc(scores, changed)}
        flipped = np.array([bool(a.get("class_flipped")) for a in anns])
        row["class flip"] = auroc(scores[flipped | clean], flipped[flipped | clean])
        for op in ("dilate", "erode", "localization", "approximation"):
            hit = np.array([a.get("noise_op") == op and not a.get("class_flipped") for a in anns])
            row[op] = auroc(scores[hit | clean], hit[hit | clean])
        report[name] = row
    return report


def write_report(out: Path, results: list[dict], summary: dict, found: list[dict], paper: dict, extra: dict,
                 args: argparse.Namespace, seconds: float) -> None:
    lines = ["# The paper in miniature: Shapes-N, cpu-shapes", "",
             f"Command: `python benchmarks/paper_in_miniature.py {' '.join(args.argv)}`", "",
             f"Runs: {len(results)}; CPU time of the training runs: {sum(r['cpu_seconds'] or 0 for r in results) / 60:.1f} "
             f"CPU-min (each run one thread); wall {seconds / 60:.1f} min.", "",
             "| group | runs | mask AP | Boundary AP | box AP | CPU-s / run |", "|---|---|---|---|---|---|"]
    for group, stats in summary.items():
        cells = [f"{stats[key][0]:.3f} ± {stats[key][1]:.3f}" for key, _ in METRICS]
        lines.append(f"| {group} | {stats['segm'][2]} | {' | '.join(cells)} | {stats['cpu_seconds']:.0f} |")
    lines += ["", "Paper (COCO-N, Mask2Former R50, Table 2, percent): "
              + ", ".join(f"{level} {paper['m2f'][level]['segm']:.1f} / {paper['m2f'][level]['boundary']:.1f}"
                          for level in LEVELS), "", "## Findings", "",
              "| finding | holds here | here | paper |", "|---|---|---|---|"]
    lines += [f"| {f['finding']} | {'yes' if f['holds'] else '**no**'} | {f['evidence']} | {f['paper']} |" for f in found]
    if "separability" in extra.get("diagnostics", {}):
        lines += ["", "## Loss separability (hard run, `hf-noisy analyze losses`)", "", "```",
                  extra["diagnostics"]["losses_table"], "```"]
    if "confidence" in extra.get("diagnostics", {}):
        lines += ["", "## Confidence (`hf-noisy analyze confidence`)", "", "| level | detections | mean score | > 0.5 |",
                  "|---|---|---|---|"]
        lines += [f"| {r['name']} | {r['detections']} | {r['mean_score']:.3f} | {r['share_above']:.1%} |"
                  for r in extra["diagnostics"]["confidence"]]
    if "audit" in extra:
        a = extra["audit"]
        lines += ["", "## Audit on cross-fitted predictions (hard train split, 2 folds)", "",
                  f"{a['annotations']} annotations, {a['changed']} changed by noise, {a['predictions']} out-of-sample "
                  "detections. AUROC of each score for 'changed by noise' (overall) and per kind against clean:", ""]
        scorers = [k for k in a if isinstance(a[k], dict)]
        columns = list(a[scorers[0]]) if scorers else []
        lines += ["| scorer | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
        lines += [f"| {s} | " + " | ".join(f"{a[s][c]:.3f}" for c in columns) + " |" for s in scorers]
    (out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "results.json").write_text(json.dumps({"runs": results, "summary": summary, "findings": found,
                                                  "paper": paper, **extra}, indent=1, default=str), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="output folder (reused: finished runs are kept)")
    parser.add_argument("--config", default="cpu-shapes", help="training config (default cpu-shapes)")
    parser.add_argument("--quick", action="store_true", help="one seed for everything")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default 0 1 2)")
    parser.add_argument("--ablation-seeds", type=int, default=1, help="seeds per ablation config (default 1)")
    parser.add_argument("--loss-seeds", type=int, default=1, help="seeds per SCE/GCE run (default 1)")
    parser.add_argument("--steps", type=int, default=None, help="override the config's max_steps")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once, one thread each (default 2)")
    parser.add_argument("--num-train", type=int, default=1000, help="Shapes-N train images (default 1000)")
    parser.add_argument("--num-val", type=int, default=100, help="Shapes-N validation images (default 100)")
    parser.add_argument("--generator-seed", type=int, default=0)
    parser.add_argument("--diagnostics", action="store_true", help="instance losses of a hard run; confidence")
    parser.add_argument("--audit", action="store_true", help="cross-fitted audit of the hard train split")
    parser.add_argument("--only", nargs="+", default=None, help="run only these groups (e.g. clean hard)")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: report on the planned runs that have finished, list the others")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    dataset = build(args.out, args)  # (cheap when it exists)
    runs = [r for r in plan(args) if args.only is None or r["group"] in args.only]
    print(f"{len(runs)} runs, {args.jobs} at a time", flush=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda run: train(run, dataset, args.out, args), runs))
    failed = [r for r in results if "failed" in r]
    missing = [r["name"] for r in results if "missing" in r]
    if missing:
        print(f"not trained (--report-only): {', '.join(missing)}")
    results = [r for r in results if "failed" not in r and "missing" not in r]
    scored = [r for r in results if r["group"] != "audit"]
    summary = summarise(scored)
    paper = paper_numbers()
    found = findings(summary, paper) if all(level in summary for level in LEVELS) else []
    extra = {}
    if args.diagnostics:
        extra["diagnostics"] = diagnostics(args.out, scored)
    if args.audit and all((args.out / "runs" / f"hard-fold{k}" / "heldout.json").is_file() for k in range(2)):
        extra["audit"] = audit(args.out, dataset, args)
    if all(level in summary for level in LEVELS):
        figures(summary, args.out, paper)
    write_report(args.out, scored, summary, found, paper, extra, args, time.perf_counter() - started)
    print((args.out / "results.md").read_text(encoding="utf-8"))
    if failed:
        print(f"{len(failed)} run(s) failed: " + ", ".join(f"{r['name']} ({r['failed']})" for r in failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
