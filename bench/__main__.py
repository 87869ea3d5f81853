"""``python -m bench [training|service|search|lanes|ingest|packed|batch|recipe|all]``: run
benchmarks, print, save."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import (
    batch,
    ingest,
    lanes,
    packed,
    recipe,
    results,
    search,
    search_report,
    service,
    training,
)
from bench.reference import DEBIAN_FASHION_MNIST
from bench.runner import RunFailed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "which",
        nargs="?",
        default="all",
        choices=[
            "training",
            "service",
            "search",
            "lanes",
            "ingest",
            "packed",
            "batch",
            "recipe",
            "all",
        ],
        help="which benchmark to run (default: all)",
    )
    parser.add_argument("--epochs", type=int, default=2, help="training epochs for each side")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--repeat", type=int, default=1, help="run each side N times, alternating; keep the best"
    )
    parser.add_argument(
        "--fashion-mnist",
        type=Path,
        default=DEBIAN_FASHION_MNIST,
        metavar="DIR",
        help="where the Fashion-MNIST IDX files are (.gz or not; default: Debian's package)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=search.PARTS + recipe.PARTS,
        metavar="PART",
        help="search: run only this part (rows: the grid by worker count and the 4-trial ASHA "
        "rows; notebook: the notebook's grid against cnnlab train and the notebook's way; asha: "
        "16 random trials with ASHA against a 16-point grid); recipe: recipe (the named recipe "
        "against the notebook's spec), warm (warm start on little data), augment (its cost); "
        "may be given more than once",
    )
    parser.add_argument(
        "--recipe-epochs",
        type=int,
        help="recipe: train the named recipe and the notebook's spec this many epochs (a shorter "
        "run on a busy machine; default: the recipe's 12 and the notebook's 10)",
    )
    parser.add_argument("--out", type=Path, default=results.RESULTS_DIR, help="results folder")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.repeat < 1:
        parser.error("--epochs and --repeat must be at least 1")

    try:
        if args.which in ("training", "all"):
            result = training.run(args.epochs, args.device, args.repeat, args.fashion_mnist)
            training.report(result)
            _save("training", result, args.out)
        if args.which in ("service", "all"):
            result = service.run()
            service.report(result)
            _save("service", result, args.out)
        if args.which in ("search", "all"):
            only = tuple(p for p in args.only or search.PARTS if p in search.PARTS)
            result = search.run(args.repeat, args.fashion_mnist, only)
            search_report.report(result)
            _save("search", result, args.out)
        if args.which in ("lanes", "all"):
            result = lanes.run(args.fashion_mnist)
            lanes.report(result)
            _save("lanes", result, args.out)
        if args.which in ("ingest", "all"):
            result = ingest.run(args.fashion_mnist, args.device, args.epochs, args.repeat)
            ingest.report(result)
            _save("ingest", result, args.out)
        if args.which in ("batch", "all"):
            result = batch.run()
            batch.report(result)
            _save("batch", result, args.out)
        if args.which in ("recipe", "all"):
            parts = tuple(p for p in args.only or recipe.PARTS if p in recipe.PARTS)
            result = recipe.run(args.fashion_mnist, parts, args.repeat, args.recipe_epochs)
            recipe.report(result)
            _save("recipe", result, args.out)
        # Not in `all`: on a CPU, packing is slower than one trial after another (see README).
        if args.which == "packed":
            result = packed.run(args.device, repeat=args.repeat, source=args.fashion_mnist)
            packed.report(result)
            _save("packed", result, args.out)
    except RunFailed as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _save(name: str, result: dict[str, object], out: Path) -> None:
    path = results.write(name, {**result, "machine": results.machine()}, out)
    print(f"  saved {path}")


if __name__ == "__main__":
    sys.exit(main())
