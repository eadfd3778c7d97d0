"""`levelres`: one command for the project's tools. Each subcommand runs the module named in `COMMANDS` exactly
as `python -m <module>` would (same options, same `--help`, same exit status).

Usage:
    levelres --help
    levelres restore noisy.png --model out/artifacts/denoise-mobile.onnx --level 25 -o clean.png
    levelres export onnx --weights denoise-mobile -o out/
    levelres devices jetson --onnx model.onnx --set samples --json results.json
"""

from __future__ import annotations

import runpy
import sys

# subcommand -> (module run as `python -m`, one line for `levelres --help`); modules are named, not imported, so
# the command starts without torch and each tool imports only what it needs
COMMANDS: dict[str, tuple[str, str]] = {
    "restore": ("runtimes.restore", "restore one image with an artifact or a checkpoint at a given level"),
    "bench": ("runtimes.bench", "benchmark artifacts (accuracy, latency); with none, the main job (job)"),
    "golden": ("runtimes.golden", "run an artifact against its golden vectors (byte-for-byte integration check)"),
    "autolevel-eval": ("runtimes.autolevel_eval", "measure the automatic level estimate on an image set"),
    "train": ("train", "train a level-scaled weight set (needs levelres[train])"),
    "evaluate": ("train.evaluate", "PSNR/SSIM of checkpoints on an image set at many levels"),
    "compare": ("train.compare", "the one-weight-set vs per-level table from finished runs"),
    "calibrate": ("train.calibrate", "calibrate a weight set's level -> strength map on validation images"),
    "qat": ("train.qat", "quantization-aware fine-tuning for the int8 exports"),
    "ship": ("train.ship", "ship a finished run as packaged weights"),
    "cards": ("train.cards", "model cards for the shipped weight sets"),
    "throughput": ("train.throughput", "training throughput: the trainer against a plain loop"),
    "export": ("export.all", "export a model: levelres export FORMAT ... (FORMAT: all or one format key)"),
    "job": ("export.job", "the main job: export every format and benchmark it"),
    "bench-cpu": ("export.bench_cpu", "checkpoints at 1920x1080 through every CPU path, side by side"),
    "bench-modes": ("export.bench_modes", "latency of the folded, weights and fixed level modes"),
    "devices": ("devices", "run on a target device: levelres devices TARGET ... (TARGET: see below)"),
}
# the second word of `export` and `devices`
EXPORT_FORMATS = ("onnx", "tflite", "coreml", "tensorrt")  # export.<key>; `all` is export.all
DEVICE_TARGETS = {"jetson": "devices.jetson", "android": "devices.android", "ios": "devices.ios",
                  "bundle": "devices.bundle"}


def usage() -> str:
    width = max(map(len, COMMANDS)) + 2
    lines = ["usage: levelres COMMAND [options]   (levelres COMMAND --help for a command's options)", "",
             "commands:"]
    lines += [f"  {name:<{width}}{text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", f"  export FORMAT: all, {', '.join(EXPORT_FORMATS)}",
              f"  devices TARGET: {', '.join(DEVICE_TARGETS)}",
              "", "Each command is also `python -m MODULE` (levelres restore = python -m runtimes.restore)."]
    return "\n".join(lines)


class UsageError(Exception):
    pass


def resolve(argv: list[str]) -> tuple[str, list[str]]:
    """(module, its arguments) for a `levelres` command line."""
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        raise UsageError(f"unknown command {name!r}; one of: {', '.join(COMMANDS)} (see levelres --help)")
    if name == "export":
        return _second(rest, "export", "FORMAT", {"all": "export.all", **{k: f"export.{k}" for k in EXPORT_FORMATS}})
    if name == "devices":
        return _second(rest, "devices", "TARGET", DEVICE_TARGETS)
    return COMMANDS[name][0], rest


def _second(rest: list[str], command: str, what: str, table: dict[str, str]) -> tuple[str, list[str]]:
    if not rest or rest[0] in ("-h", "--help"):
        raise UsageError(f"levelres {command} {what} ...: {what} is one of {', '.join(table)} "
                         f"(levelres {command} {next(iter(table))} --help for its options)")
    if rest[0] not in table:
        raise UsageError(f"unknown {command} {what.lower()} {rest[0]!r}; one of: {', '.join(table)}")
    return table[rest[0]], rest[1:]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        from levelres import __version__

        print(f"levelres {__version__}")
        return 0
    try:
        module, rest = resolve(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.argv = [f"levelres {argv[0]}", *rest]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
