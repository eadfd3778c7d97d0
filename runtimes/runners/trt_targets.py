"""The TensorRT versions the project exports for: ONNX opset, JetPack release and the installed-version check.

A target is what a user names with `--trt-version` (8.5, 8.6, 10, 11; a full version such as 10.3.0 picks
its target) or `--jetpack` (5, 6.0, 6.1, 6.2). TensorRT 8.5 and 8.6 parse ONNX opsets up to 17
(onnx/onnx-tensorrt `docs/operators.md` on `release/8.5-GA` and `release/8.6-GA`); TensorRT 10.0 parses
opsets 9 to 20 (the same file on `release/10.0-GA`), so 10.x and 11.x get the exporter's own opset 18.
Precision handling per version lives in runtimes.runners.trt_precision; operator support in runtimes.runners.trt_ops.
Torch-free and onnx-free, so it ships to devices.

Usage:
    target = resolve_target("8.5")          # or resolve_target(None, jetpack="5")
    target.opset, target.version_check_line()
"""

from __future__ import annotations

from dataclasses import dataclass

from runtimes.core.errors import UserError

DEFAULT_TARGET = "10"


@dataclass(frozen=True)
class TrtTarget:
    """One TensorRT release line the exporter targets.

    Attributes:
        key: the name users give (8.5, 8.6, 10, 11) and the operator table's key.
        major: TensorRT major version.
        minor: minor version when the target is one minor release (8.5, 8.6); None for a whole major line.
        opset: the ONNX opset written for it.
        max_opset: the highest opset its ONNX parser takes.
        jetpack: the JetPack releases that ship it ("" when none does).
    """

    key: str
    major: int
    minor: int | None
    opset: int
    max_opset: int
    jetpack: str = ""

    @property
    def label(self) -> str:
        """'8.5' or '10.x'."""
        return self.key if self.minor is not None else f"{self.key}.x"

    def version_pattern(self) -> str:
        """A shell `case` pattern matching trtexec's version code ([TensorRT v8502] for 8.5.2, v100300 for 10.3)."""
        return f"{self.major}{self.minor}??" if self.minor is not None else f"{self.major}????"

    def version_check_line(self) -> str:
        """One shell line: stop unless the installed trtexec reports this target's TensorRT version."""
        want = self.label
        return ('v=$("$TRTEXEC" 2>&1 | sed -n \'s/.*\\[TensorRT v\\([0-9]*\\)\\].*/\\1/p\' | head -n 1); '
                f'case "$v" in {self.version_pattern()}) ;; *) echo "this script was made for TensorRT {want} but '
                f'trtexec reports ${{v:-no version}} (codes: 8502 = 8.5.2, 100300 = 10.3.0); re-export with python -m '
                f'export.tensorrt --trt-version <installed>" >&2; exit 1;; esac')


TARGETS: dict[str, TrtTarget] = {
    "8.5": TrtTarget("8.5", 8, 5, 17, 17, "5.1"),
    "8.6": TrtTarget("8.6", 8, 6, 17, 17, "6.0"),
    "10": TrtTarget("10", 10, None, 18, 20, "6.1, 6.2"),
    "11": TrtTarget("11", 11, None, 18, 25),
}
# JetPack release -> the TensorRT it ships (JetPack 5.1.x: 8.5.2; 6.0: 8.6.2; 6.1 and 6.2: 10.3).
JETPACK = {"5": "8.5", "5.1": "8.5", "6": "8.6", "6.0": "8.6", "6.1": "10", "6.2": "10"}
HINT = "give --trt-version 8.5, 8.6, 10 or 11 (a full version such as 10.3.0 also works)"


def target_key(version: str) -> str:
    """The target key of a version string: '8.5.2' -> '8.5', '10.3' -> '10', '11' -> '11'."""
    parts = str(version).strip().split(".")
    try:
        major = int(parts[0])
        minor = int(parts[1]) if len(parts) > 1 and parts[1] else None
    except ValueError:
        raise UserError(f"cannot read a TensorRT version from {version!r}; {HINT}") from None
    if major == 8 and minor in (5, 6):
        return f"8.{minor}"
    if major >= 10:
        return str(major)
    raise UserError(f"TensorRT {version} is not supported; {HINT}")


def resolve_target(version: str | None = None, jetpack: str | None = None) -> TrtTarget:
    """The target for a TensorRT version or a JetPack release (neither: TensorRT 10).

    Raises:
        UserError: an unknown version or JetPack release, or both given and disagreeing.
    """
    from_jp = None
    if jetpack is not None:
        if str(jetpack) not in JETPACK:
            raise UserError(f"unknown --jetpack {jetpack}; choose one of {', '.join(JETPACK)} "
                            "(6 means 6.0, which ships TensorRT 8.6; 6.1 and 6.2 ship 10.3)")
        from_jp = JETPACK[str(jetpack)]
    key = target_key(version) if version is not None else from_jp or DEFAULT_TARGET
    if from_jp is not None and key != from_jp:
        raise UserError(f"--jetpack {jetpack} ships TensorRT {TARGETS[from_jp].label}, not {version}; give one of them")
    if key not in TARGETS:
        raise UserError(f"TensorRT {version} is newer than the versions this project checks; {HINT}")
    return TARGETS[key]


def version_from_code(code: int) -> str:
    """trtexec's banner code as a version: 8502 -> 8.5.2 (TensorRT 8), 100300 -> 10.3.0 (TensorRT 9 and later)."""
    if code < 10000:
        return f"{code // 1000}.{code // 100 % 10}.{code % 100}"
    return f"{code // 10000}.{code // 100 % 100}.{code % 100}"
