"""The model registry from the command line: ``cnnlab models list | show | register | alias |
evaluate | compare | predict-batch``.

Written as the other client commands are (:mod:`cnnlab.cli.remote`): the server and token from
``--url``/``--token``/``--token-file`` or the environment, an error in one line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.cli._remote_base import (
    EXIT_FAILED,
    EXIT_OK,
    OUTCOME_EXIT,
    UsageError,
    dump,
    pct,
    runner,
    server_args,
    table,
)
from cnnlab.cli.export import parse_reference

if TYPE_CHECKING:
    from cnnlab.client import Client

MODELS_USAGE = """
  cnnlab models list
  cnnlab models show NAME
  cnnlab models register NAME JOB_ID [--alias A]
  cnnlab models alias NAME ALIAS VERSION
  cnnlab models evaluate NAME[@ALIAS|@V] --dataset D
  cnnlab models compare NAME A B --dataset D          (A, B: versions or aliases)
  cnnlab models predict-batch NAME[@ALIAS|@V] PATH -o results.csv
                                                       (PATH: a zip or tar, or a dataset name)
"""
ACTIONS = ("list", "show", "register", "alias", "evaluate", "compare", "predict-batch")


def register(subparsers: argparse._SubParsersAction) -> None:
    models = subparsers.add_parser(
        "models",
        parents=[server_args()],
        help="list, register, alias, evaluate, compare and batch-predict registered models",
        description="The model registry: named models, their versions and aliases.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    models.usage = MODELS_USAGE
    models.add_argument("action", choices=ACTIONS)
    models.add_argument("words", nargs="*", metavar="ARG")
    models.add_argument("--alias", help="with register: point this alias at the new version")
    models.add_argument("--dataset", help="with evaluate and compare: the labelled set")
    models.add_argument("-o", "--output", type=Path, help="with predict-batch: the CSV to write")
    models.add_argument("--top-k", type=int, default=5, help="with predict-batch: classes kept")
    models.add_argument("--json", action="store_true", help="print JSON, not a table")
    models.set_defaults(func=runner(cmd_models))


def _words(args: argparse.Namespace, count: int, usage: str) -> list[str]:
    if len(args.words) != count:
        raise UsageError(f"usage: cnnlab models {args.action} {usage}")
    return list(args.words)


def cmd_models(client: Client, args: argparse.Namespace) -> int:
    action = args.action
    if action == "list":
        models = client.models()
        if args.json:
            dump(models)
        else:
            rows = [
                [m["name"], m["latest_version"], m["version_count"], _aliases(m["aliases"])]
                for m in models
            ]
            print(table(["NAME", "LATEST", "VERSIONS", "ALIASES"], rows))
        return EXIT_OK
    if action == "show":
        (name,) = _words(args, 1, "NAME")
        model = client.model(name)
        if args.json:
            dump(model)
        else:
            rows = [
                [v["version"], ",".join(v["aliases"]), v["dataset"], v["arch"], v["epoch"],
                 pct(v["val_accuracy"]), pct(v["test_accuracy"]), v["job_id"]]
                for v in model["versions"]
            ]  # fmt: skip
            headers = ["VERSION", "ALIASES", "DATASET", "ARCH", "EPOCH", "VAL", "TEST", "JOB"]
            print(table(headers, rows))
        return EXIT_OK
    if action == "register":
        name, job_id = _words(args, 2, "NAME JOB_ID [--alias A]")
        version = client.register_model(name, job_id)
        if args.alias:
            client.set_alias(name, args.alias, int(version["version"]))
        print(f"{name} version {version['version']}" + (f" ({args.alias})" if args.alias else ""))
        return EXIT_OK
    if action == "alias":
        name, alias, number = _words(args, 3, "NAME ALIAS VERSION")
        if not number.isdigit():
            raise UsageError(f"VERSION must be a number, not {number!r}")
        answer = client.set_alias(name, alias, int(number))
        print(f"{name}@{alias} → version {answer['version']}")
        return EXIT_OK
    if action == "evaluate":
        (ref,) = _words(args, 1, "NAME[@ALIAS|@V] --dataset D")
        return _evaluate(client, args, ref)
    if action == "compare":
        name, a, b = _words(args, 3, "NAME A B --dataset D")
        comparison = client.compare(name, _ref(a), _ref(b), _dataset(args))
        return _finish(client, comparison, args, _comparison_summary)
    (ref, source) = _words(args, 2, "NAME[@ALIAS|@V] PATH -o results.csv")
    return _predict_batch(client, args, ref, source)


def _evaluate(client: Client, args: argparse.Namespace, ref: str) -> int:
    name, alias, version = parse_reference(ref)
    evaluation = client.evaluate(name, _dataset(args), version=version, alias=alias)
    return _finish(client, evaluation, args, _evaluation_summary)


def _ref(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _dataset(args: argparse.Namespace) -> str:
    if not args.dataset:
        raise UsageError(f"{args.action} needs --dataset")
    return str(args.dataset)


def _aliases(aliases: dict[str, int]) -> str:
    return ", ".join(f"{a}→{v}" for a, v in aliases.items())


def _finish(
    client: Client, resource: dict[str, Any], args: argparse.Namespace, summary: Any
) -> int:
    print(f"{resource['kind']} {resource['id']} queued", file=sys.stderr)
    done = client.wait_scoring(resource)
    if args.json:
        dump(done)
    elif done["status"] == "succeeded":
        print(summary(done["result"]))
    else:
        error = done.get("error") or {}
        print(f"{done['status']}: {error.get('message', '')}", file=sys.stderr)
    return OUTCOME_EXIT.get(done["status"], EXIT_FAILED)


def _evaluation_summary(result: dict[str, Any]) -> str:
    rows = [
        [name, f"{c['precision']:.3f}", f"{c['recall']:.3f}", f"{c['f1']:.3f}", c["support"]]
        for name, c in result["per_class"].items()
    ]
    lines = table(["CLASS", "PRECISION", "RECALL", "F1", "SUPPORT"], rows)
    head = (
        f"accuracy {pct(result['accuracy'])} on {result['count']} images, ECE {result['ece']:.3f}"
    )
    return f"{head}\n{lines}"


def _comparison_summary(result: dict[str, Any]) -> str:
    a, b, test = result["a"], result["b"], result["mcnemar"]
    return (
        f"a ({a['label']}): accuracy {pct(a['accuracy'])}\n"
        f"b ({b['label']}): accuracy {pct(b['accuracy'])}\n"
        f"disagreements {result['disagreement_count']} (only a right {test['a_only']}, "
        f"only b right {test['b_only']}); McNemar p = {test['p_value']:.4g} ({test['method']})\n"
        f"{result['verdict']}"
    )


def _predict_batch(client: Client, args: argparse.Namespace, ref: str, source: str) -> int:
    from tqdm import tqdm

    name, alias, version = parse_reference(ref)
    path = Path(source)
    upload = tqdm(total=path.stat().st_size if path.is_file() else 0, unit="B", unit_scale=True,
                  desc="upload", disable=not path.is_file(), file=sys.stderr)  # fmt: skip

    def sent(done: int, total: int) -> None:
        upload.update(done - upload.n)

    batch = client.batch_predict(
        name, source, version=version, alias=alias, top_k=args.top_k, on_progress=sent
    )
    upload.close()
    bar = tqdm(desc="predict", unit="img", file=sys.stderr)

    def polled(current: dict[str, Any]) -> None:
        done = (current.get("progress") or {}).get("done", 0)
        bar.update(done - bar.n)

    finished = client.wait_scoring(batch, on_poll=polled)
    bar.close()
    if finished["status"] != "succeeded":
        error = finished.get("error") or {}
        print(f"{finished['status']}: {error.get('message', '')}", file=sys.stderr)
        return OUTCOME_EXIT.get(finished["status"], EXIT_FAILED)
    text = client.batch_results(finished["id"])
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
        result = finished["result"]
        print(f"{result['count']} rows ({result['skipped']} skipped) → {args.output}")
    return EXIT_OK


def predict_with_model(
    client: Client, ref: str, images: list[Path], args: argparse.Namespace
) -> int:
    """``cnnlab predict --model NAME[@ALIAS|@V] IMAGE…``: a table of each image's classes."""
    missing = [str(p) for p in images if not p.is_file()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    name, alias, version = parse_reference(ref)
    answer = client.predict_model(name, images, alias=alias, version=version)
    if args.json:
        dump(answer)
        return EXIT_OK
    rows = []
    for path, result in zip(images, answer["predictions"], strict=True):
        probs = result["probabilities"]
        best = sorted(range(len(probs)), key=lambda i: -probs[i])[: max(1, args.top)]
        rows.append([path.name, result["class_name"], f"{probs[best[0]]:.3f}",
                     ", ".join(f"{i} {probs[i]:.3f}" for i in best[1:])])  # fmt: skip
    print(
        f"{name} version {answer['version']}" + (f" ({answer['alias']})" if answer["alias"] else "")
    )
    print(table(["IMAGE", "CLASS", "P", "NEXT (label p)"], rows))
    return EXIT_OK
