"""The `mnistlab` command: argument parsing only; each command calls the package's functions.

Keras and the backend are imported inside the commands that need them, so `--help` and argument
errors answer at once. A MnistlabError is printed as one line on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .errors import MnistlabError, UsageError
from .recipes import DEFAULT_RECIPE, RECIPES

DATASETS = ("mnist", "fashion-mnist")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other user error
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _positive(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seed(text: str) -> int:
    value = _whole(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be between 0 and 4294967295, got {value}")
    return value


def _port(text: str) -> int:
    value = _whole(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {value}")
    return value


def _workers(text: str) -> int:
    value = _whole(text)
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"must be between 1 and 64, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _data_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", metavar="DIR", type=Path,
                   help="folder holding one sub-folder per dataset (mnist/, fashion-mnist/); "
                        "default: $MNISTLAB_DATA, then ~/.cache/mnistlab, then /usr/share/datasets, then download")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command."""
    from . import __version__

    parser = _Parser(
        prog="mnistlab",
        description="Train, evaluate and use handwritten-digit classifiers on MNIST and MNIST-like data.",
        epilog="Run 'mnistlab COMMAND --help' for a command's options. "
               "Example: mnistlab train --recipe cnn --out runs/cnn && mnistlab predict runs/cnn my-digit.jpg",
    )
    parser.add_argument("--version", action="version", version=f"mnistlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    recipes = "; ".join(f"{r.name}: {r.summary}" for r in RECIPES.values())
    p = sub.add_parser("train", help="train a recipe, evaluate it and write a run directory",
                       description=f"Train a named recipe, evaluate it on the test set and write the run directory "
                                   f"(model.keras, history.csv, metrics.json, plots/). Recipes: {recipes}.")
    # Settings default to None here so that --resume can tell which were given (a resumed run keeps its own).
    p.add_argument("--recipe", metavar="NAME", help=f"one of {', '.join(RECIPES)} (default: {DEFAULT_RECIPE})")
    p.add_argument("--dataset", metavar="NAME", help=f"one of {', '.join(DATASETS)} (default: mnist)")
    p.add_argument("--epochs", type=_positive, metavar="N", help="epochs (default: the recipe's)")
    p.add_argument("--batch-size", type=_positive, metavar="N", help="batch size (default: the recipe's)")
    p.add_argument("--seed", type=_seed, metavar="N", help="random seed (default: 1); the same seed gives the same model")
    p.add_argument("--limit", type=_positive, metavar="N", help="use only the first N training images")
    p.add_argument("--ensemble", type=_positive, metavar="K",
                   help="train K models (seeds N, N+1, ...) and save one model averaging their probabilities")
    p.add_argument("--no-detector", dest="detector", action="store_const", const=False, default=None,
                   help="do not fit the not-a-digit detector and the reader of touching pairs at the end (10-13 "
                        "minutes of a full-size MNIST run on 2 cores); the run then refuses only blank pictures, and "
                        "`read` cuts every touching pair apart")
    p.add_argument("--out", type=Path, metavar="RUN_DIR", help="run directory to create (default: runs/<recipe>-<timestamp>)")
    p.add_argument("--force", action="store_true", default=None, help="overwrite --out if it already holds files")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR",
                   help="continue an interrupted run from its last saved epoch with the settings it was started "
                        "with (so no other setting may be given with it); it ends where the uninterrupted run would")
    _data_dir_arg(p)

    p = sub.add_parser("finetune", help="teach a trained run your own handwriting from a few labelled pictures",
                       description="Fine-tune a trained run on your labelled pictures (IMAGES_DIR/0/*.png ... "
                                   "IMAGES_DIR/9/*.png; a few per digit is enough) and write a new run directory that "
                                   "evaluate, predict and serve take as they are. MNIST images are mixed in and the "
                                   "learning rate is small, so the model keeps what it knew; a fifth of your pictures "
                                   "is held out to show the gain once every digit has 5.")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--images", type=Path, metavar="DIR", required=True,
                   help="your labelled pictures: one sub-folder per digit (DIR/0, DIR/1, ...)")
    p.add_argument("--out", type=Path, metavar="NEW_RUN_DIR",
                   help="run directory to create (default: runs/<recipe>-finetuned-<timestamp>)")
    p.add_argument("--epochs", type=_positive, metavar="N", help="passes over your pictures (default: 8)")
    p.add_argument("--seed", type=_seed, default=1, metavar="N", help="random seed (default: 1)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it already holds files")
    _data_dir_arg(p)

    p = sub.add_parser("evaluate", help="re-evaluate a run's model on the test set or on your labelled pictures",
                       description="Reload a run's model and evaluate it on its dataset's test set, or on a folder of "
                                   "your own labelled pictures (--images): accuracy, loss, the per-class table, and "
                                   "for pictures the worst mistakes, also drawn.")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--images", type=Path, metavar="DIR",
                   help="score on your own labelled pictures instead of the test set: DIR holds one sub-folder per "
                        "class (DIR/0/*.png ... DIR/9/*.png, the layout of keras.utils.image_dataset_from_directory); "
                        "a picture with no digit found counts as wrong, and the pictures the not-a-digit detector "
                        "refuses are counted beside (what predict would get right)")
    p.add_argument("--plots", type=Path, metavar="DIR",
                   help="with --images: where to draw the confusion matrix and the worst mistakes "
                        "(default: RUN_DIR/evaluations/<name of DIR>/)")
    _data_dir_arg(p)

    p = sub.add_parser("summary", help="print a run's model summary and parameter counts",
                       description="Print model.summary() of a run's model and its parameter counts.")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")

    p = sub.add_parser("data", help="check a dataset: where it is, shapes, label counts, checksums",
                       description="Load and verify every file of a dataset; print where it was found, shapes, dtypes, "
                                   "label counts and checksum status; optionally draw sample images per class. "
                                   "Exits 2 if any file is missing, corrupt or fails its checksum.")
    p.add_argument("--dataset", default="mnist", metavar="NAME", help=f"one of {', '.join(DATASETS)} (default: mnist)")
    p.add_argument("--out", type=Path, metavar="PNG", help="write a grid of sample images per class to this PNG")
    _data_dir_arg(p)

    p = sub.add_parser("predict", help="classify your own digit images (files or folders)",
                       description="Classify image files (PNG, JPEG, BMP, GIF, WebP, TIFF; any size; dark-on-light or "
                                   "light-on-dark). Each picture is turned into an MNIST-style 28x28 input first. "
                                   "Exit status 2 if any file could not be read.")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("images", type=Path, nargs="+", metavar="IMAGE_OR_DIR", help="image files or folders of images")
    p.add_argument("--json", action="store_true", help="print one JSON array, one object per image")
    p.add_argument("--top", type=_positive, default=3, metavar="K", help="show the K most likely digits (default: 3)")
    p.add_argument("--min-confidence", type=_fraction, metavar="P",
                   help="flag answers less confident than P as LOW (default: 0.9). Confidence is calibrated on "
                        "held-out digits: an answer given with confidence P is right about P of the time, so below "
                        "0.9 about 1 answer in 4 was wrong, above it about 1 in 450 (MNIST test, cnn and fast). "
                        "Pictures that are not a digit at all are refused, not flagged")
    p.add_argument("--save-preprocessed", type=Path, metavar="DIR", help="write the 28x28 images the model saw here")
    p.add_argument("--allow-partial", action="store_true", help="use a run whose training did not finish")
    _engine_arg(p)

    p = sub.add_parser("read", help="read whole numbers written on one line (files or folders)",
                       description="Read the number written on one line in each image: the digits are found "
                                   "(touching ones split, broken ones joined, specks and ruled lines ignored), each "
                                   "is read by the model, and the answer is the number, left to right. "
                                   "Exit status 2 if any file could not be read.")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("images", type=Path, nargs="+", metavar="IMAGE_OR_DIR", help="image files or folders of images")
    p.add_argument("--json", action="store_true", help="print one JSON array, one object per image")
    p.add_argument("--annotate", type=Path, metavar="DIR",
                   help="write each image here with the boxes and digits read drawn on it")
    p.add_argument("--min-confidence", type=_fraction, metavar="P",
                   help="flag readings less confident than P as LOW (default: 0.8); a reading's confidence is the "
                        "product of its digits'")
    p.add_argument("--allow-partial", action="store_true", help="use a run whose training did not finish")
    _engine_arg(p)

    p = sub.add_parser("serve", help="start the draw-a-digit web app",
                       description="Serve a web page to draw or upload a digit and see the model's prediction, write a "
                                   "number and see it read, and a JSON API (POST /api/predict, POST /api/read, "
                                   "POST /api/correct, GET /api/health, GET /api/model).")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8000, metavar="N", help="port (default: 8000; 0: any free port)")
    p.add_argument("--allow-partial", action="store_true", help="use a run whose training did not finish")
    p.add_argument("--corrections", type=Path, metavar="DIR",
                   help="save the answers users correct on the page (\"wrong? it is a 7\") into DIR/<digit>/, "
                        "ready for `mnistlab finetune RUN --images DIR` (default: off; at most "
                        "10,000 pictures)")
    p.add_argument("--workers", type=_workers, metavar="N",
                   help="server processes sharing the port, each with its own copy of the model (default: one per "
                        "core, at most 4, on the onnxruntime path; 1 on the Keras path, where each would import "
                        "TensorFlow, and with --corrections)")
    _engine_arg(p)

    p = sub.add_parser("export", help="export a run's model to ONNX, LiteRT or SavedModel, checked against Keras",
                       description="Export a finished run's model with Keras' own exporter, run the export with its own "
                                   "runtime on 1,000 MNIST test images and compare with Keras (same digit, "
                                   "probabilities within 1e-4; int8: test accuracy within 0.2 points), then store the "
                                   "figures beside it (<export>.parity.json) and write MODEL_CARD.md. A failed check "
                                   "keeps nothing. Without --out the export goes into RUN_DIR/export/, where predict "
                                   "and serve find an ONNX export and run it without TensorFlow.")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--format", required=True, metavar="FORMAT", help="onnx, litert or saved_model")
    p.add_argument("--quantize", metavar="int8", help="litert only: full-integer int8 quantization (float input "
                                                      "and output kept); reports size and accuracy against float")
    p.add_argument("--out", type=Path, metavar="PATH", help="where to write the export (a .onnx or .tflite file, or "
                                                          "a SavedModel directory); default: RUN_DIR/export/model.onnx, "
                                                          "model.tflite, model-int8.tflite or saved_model")
    p.add_argument("--force", action="store_true", help="overwrite an existing export at that path")
    _data_dir_arg(p)
    return parser


def _engine_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=("auto", "keras", "onnx"), default="auto",
                   help="what runs the model: onnx (onnxruntime, no TensorFlow; needs `mnistlab export RUN_DIR "
                        "--format onnx` first), keras, or auto (default): onnx when the run has a checked ONNX "
                        "export made from its current model, keras otherwise")


# The settings of a run; with --resume the run's own are used, so giving any of these is an error.
_RUN_SETTINGS = {"recipe": "--recipe", "dataset": "--dataset", "epochs": "--epochs", "batch_size": "--batch-size",
                 "seed": "--seed", "limit": "--limit", "ensemble": "--ensemble", "detector": "--no-detector",
                 "out": "--out", "force": "--force"}


def _cmd_train(args: argparse.Namespace) -> int:
    from .training import resume_run, train

    if args.resume is not None:
        given = [flag for name, flag in _RUN_SETTINGS.items() if getattr(args, name) is not None]
        if given:
            raise UsageError(f"--resume continues a run with the settings it was started with; drop {', '.join(given)} "
                             f"(to change them, train a new run with --out)")
        run = resume_run(args.resume, data_dir=args.data_dir)
    else:
        settings = {name: getattr(args, name) for name in _RUN_SETTINGS if getattr(args, name) is not None}
        run = train(data_dir=args.data_dir, **settings)
    m = run.metrics
    print(f"test loss {m['test_loss']:.4f}  test accuracy {m['test_accuracy']:.2%}  "
          f"training time {m['train_seconds']:.1f} s  ({m['images_per_second']:.0f} images/s)")
    print(f"run directory: {run.path}")
    return 0


def _cmd_finetune(args: argparse.Namespace) -> int:
    from .training import FINETUNE_EPOCHS, finetune

    run = finetune(args.run_dir, args.images, out=args.out, epochs=args.epochs or FINETUNE_EPOCHS, seed=args.seed,
                   force=args.force, data_dir=args.data_dir)
    m = run.metrics
    gain = m.get("finetune_validation_accuracy")
    if gain:
        print(f"your held-out pictures: {gain['before']:.2%} before, {gain['after']:.2%} after")
    print(f"MNIST test accuracy {m['test_accuracy']:.2%} (was {run.settings.finetune['from_test_accuracy']:.2%})  "
          f"fine-tuning time {m['train_seconds']:.1f} s")
    print(f"run directory: {run.path}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from . import metrics as M
    from .evaluation import evaluate_run

    result = evaluate_run(args.run_dir, data_dir=args.data_dir, images=args.images, plots=args.plots)
    if result["status"] != "complete":
        print(f"mnistlab: warning: training of this run did not finish (status {result['status']!r}); "
              f"these are the figures of its last saved epoch", file=sys.stderr)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"run {args.run_dir}: recipe {result['recipe']} trained on {result['dataset']}, scored on {result['source']}")
    loss = f"  loss {result['test_loss']:.4f}" if result["test_loss"] is not None else ""
    print(f"accuracy {result['test_accuracy']:.2%}{loss}  ({result['test_images']} images)")
    refused = result.get("refused")
    if refused and (refused["no_digit_found"] or refused["not_a_digit"]):
        print(f"no digit found in {refused['no_digit_found']} (counted wrong above); the not-a-digit detector "
              f"refuses {refused['not_a_digit']} more: {result['answered_accuracy']:.2%} right as predict answers")
    print(M.format_report(result["per_class"]))
    if "mistakes" in result:
        # The most confident first, then the pictures with no digit found; at most 10 of each.
        confident = [m for m in result["mistakes"] if m["predicted"] is not None]
        missed = [m for m in result["mistakes"] if m["predicted"] is None]
        shown = confident[:10] + missed[:10]
        if shown:
            print(f"worst mistakes ({len(result['mistakes'])} in all; the most confident first):")
            for m in shown:
                if m["predicted"] is None:
                    print(f"  {m['file']}: {m['true']} not read ({m['reason']})")
                else:
                    print(f"  {m['file']}: {m['true']} read as {m['predicted']} ({m['confidence']:.0%})")
        print(f"figures: {result['plots']['confusion_matrix']}, {result['plots']['mistakes']}")
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    import numpy as np

    from .runs import load_run

    run = load_run(args.run_dir)
    model = run.model
    model.summary(print_fn=lambda line, **_: print(line))
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    total = int(model.count_params())
    line = f"model parameters: {total:,} ({trainable:,} trainable, {total - trainable:,} non-trainable)"
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and optimizer.variables:
        # Keras' "Total params" above adds the optimizer's state to the model's own parameters.
        state = sum(int(np.prod(v.shape)) for v in optimizer.variables)
        line += f"; Keras' total above also counts the optimizer's {state:,} state values"
    print(line)
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    import numpy as np

    from .data import load_dataset

    data = load_dataset(args.dataset, args.data_dir, remember=args.data_dir is not None)
    print(f"{data.spec.name}: found in {data.directory} ({data.source})")
    for split, x, y in [("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)]:
        counts = np.bincount(y, minlength=len(data.spec.class_names))
        print(f"  {split}: images {x.shape} {x.dtype}, labels {y.shape} {y.dtype}, pixel range {x.min()}..{x.max()}")
        print("    label counts: " + "  ".join(f"{n}={c}" for n, c in zip(data.spec.class_names, counts)))
    for name, digest in data.sha256.items():
        print(f"  {name}: sha256 {digest} OK")
    if args.out:
        from .plots import sample_grid

        sample_grid(data.x_train, data.y_train, data.spec.class_names, args.out)
        print(f"sample grid: {args.out}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from .prediction import format_table, predict_paths
    from .runs import load_run

    run = load_run(args.run_dir, allow_partial=args.allow_partial, engine=args.engine)
    records = predict_paths(run, args.images, top=args.top, min_confidence=args.min_confidence,
                            save_preprocessed=args.save_preprocessed)
    print(json.dumps(records, indent=2) if args.json else format_table(records, run.class_names))
    unreadable = [r for r in records if r.get("error") and not r.get("no_digit")]
    for r in unreadable:
        if not args.json:
            print(f"mnistlab: error: {r['error']}", file=sys.stderr)
    return 2 if unreadable else 0


def _cmd_read(args: argparse.Namespace) -> int:
    from .reading import format_table, read_paths
    from .runs import load_run

    run = load_run(args.run_dir, allow_partial=args.allow_partial, engine=args.engine)
    records = read_paths(run, args.images, min_confidence=args.min_confidence, annotate=args.annotate)
    print(json.dumps(records, indent=2) if args.json else format_table(records))
    unreadable = [r for r in records if r["error"]]
    for r in unreadable:
        if not args.json:
            print(f"mnistlab: error: {r['error']}", file=sys.stderr)
    return 2 if unreadable else 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from .serve import serve

    serve(args.run_dir, host=args.host, port=args.port, allow_partial=args.allow_partial, engine=args.engine,
          corrections=args.corrections, workers=args.workers)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export_run

    record = export_run(args.run_dir, args.format, quantize=args.quantize, out=args.out, force=args.force,
                        data_dir=args.data_dir)
    return 0 if record["passed"] else 2


COMMANDS = {"train": _cmd_train, "finetune": _cmd_finetune, "evaluate": _cmd_evaluate, "summary": _cmd_summary,
            "data": _cmd_data, "predict": _cmd_predict, "read": _cmd_read, "serve": _cmd_serve,
            "export": _cmd_export}


# Python parameter -> how the CLI spells it (None: a positional argument, shown as the value alone).
_FLAGS = {"run_dir": None, "images": None, "batch_size": "--batch-size", "min_confidence": "--min-confidence",
          "data_dir": "--data-dir", "allow_partial": "--allow-partial", "save_preprocessed": "--save-preprocessed",
          "annotate": "--annotate"}


def _message(exc: MnistlabError) -> str:
    """The error as one line, naming the CLI flag where the library named its Python parameter."""
    if isinstance(exc, UsageError) and exc.param:
        flag = _FLAGS.get(exc.param, "--" + exc.param.replace("_", "-"))
        value = os.fspath(exc.value) if isinstance(exc.value, os.PathLike) else exc.value
        return f"{flag} {value}: {exc.problem}" if flag else f"{value}: {exc.problem}"
    return str(exc)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except MnistlabError as exc:
        print(f"mnistlab: error: {_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mnistlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`mnistlab evaluate RUN --json | head -n 1`): stop quietly, as cat or grep do.
        # stdout is pointed at /dev/null so that the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a program the closed pipe stopped


if __name__ == "__main__":
    sys.exit(main())
