"""The ``lowdisp`` command: demo, train, analyze, pseudospectra, reproduce, sweep, bench, info.

Each sub-command lives in its own module exposing ``add_arguments(parser)``
and ``run(args) -> int``; the module is imported only when its command runs,
so ``lowdisp --help`` and ``lowdisp info`` start quickly.

Error contract (:func:`main`): a user error (a bad option value, a missing or
wrong file, a refused resume: :class:`~lowdisp.exceptions.UsageError`,
:class:`~lowdisp.exceptions.CheckpointError`, argparse's errors, and
``FileNotFoundError``/``FileExistsError``/``NotADirectoryError``/
``IsADirectoryError``/``PermissionError`` of the files named on the command
line) prints exactly one line ``lowdisp: error: ...`` to stderr and exits
with status 2; a diverged training run prints one line and exits with 1; an
interrupt (Ctrl-C) exits with 130. ``--debug`` (anywhere on the command
line) shows the traceback instead. Anything else is a bug and keeps its
traceback.

Examples
--------
>>> from lowdisp.cli import main
>>> main(["--version"])  # doctest: +SKIP
lowdisp 0.1.0
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

import lowdisp

__all__ = ["main"]

#: command name -> (module implementing it, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("lowdisp._demo", "run the main job on its embedded default and write a report"),
    "train": ("lowdisp.nn._cli", "train a recurrent network on a synthetic or small real task"),
    "analyze": (
        "lowdisp.nn._analyze_cli",
        "spectra, non-normality and pseudospectra of a run's weights along training",
    ),
    "pseudospectra": (
        "lowdisp._pseudospectra_cli",
        "epsilon-pseudospectra of a matrix file, a checkpoint or a run folder",
    ),
    "reproduce": ("lowdisp.nn._reproduce_cli", "rerun a paper's structured-layer experiment"),
    "sweep": (
        "lowdisp._sweep_cli",
        "run a grid of training runs (task, cell, hyperparameters, seeds) on Dask, resumable",
    ),
    "bench": ("lowdisp._bench", "run a benchmark suite and print medians and ratios"),
    "info": ("lowdisp.cli", "print versions, the BLAS in use and thread counts"),
}


class _ArgumentError(Exception):
    """An argparse error, raised instead of argparse's usage-and-exit."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors become one line (see :func:`main`)."""

    def error(self, message: str) -> NoReturn:
        sub = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        raise _ArgumentError(f"{sub}: {message}" if sub else message)


def _command_name(argv: Sequence[str]) -> str | None:
    """The command named on the command line (the first word that is not an option;
    the top-level options take no value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def _build_parser(command: str | None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported to add its arguments."""
    parser = _Parser(
        prog="lowdisp",
        description="Structured and stabilized weight matrices: "
        "fast LDR products, orthogonal maps, pseudospectra, a NumPy trainer.",
    )
    parser.add_argument("--version", action="version", version=f"lowdisp {lowdisp.__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the Python traceback of an error (accepted anywhere on the command line)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (modname, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=modname)
        if command == name:
            mod = importlib.import_module(modname)
            mod.add_arguments(p)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``lowdisp info`` (none)."""


def run(args: argparse.Namespace) -> int:
    """``lowdisp info``: versions of Python and the numerical stack, BLAS, threads."""
    print(info_text())
    return 0


def info_text() -> str:
    """A multi-line report of the versions, BLAS libraries and thread counts.

    Examples
    --------
    >>> from lowdisp.cli import info_text
    >>> "numpy" in info_text()
    True
    """
    import os
    import platform

    import numpy as np
    import scipy

    lines = [
        f"lowdisp      {lowdisp.__version__}",
        f"python       {platform.python_version()} ({sys.executable})",
        f"platform     {platform.platform()}",
        f"numpy        {np.__version__}",
        f"scipy        {scipy.__version__}",
    ]
    for name in ("numba", "matplotlib", "threadpoolctl"):
        try:
            mod = importlib.import_module(name)
            lines.append(f"{name:<12} {getattr(mod, '__version__', '?')}")
        except ImportError:
            lines.append(f"{name:<12} not installed")
    lines.append(f"cpu count    {os.cpu_count()}")
    try:
        import numba

        lines.append(f"numba threads {getattr(numba.config, 'NUMBA_NUM_THREADS', '?')}")
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            lines.append(
                f"threadpool   {pool.get('internal_api')} ({pool.get('user_api')}) "
                f"{pool.get('version')} threads={pool.get('num_threads')} "
                f"arch={pool.get('architecture')} [{os.path.basename(pool.get('filepath', ''))}]"
            )
    except ImportError:
        lines.append("threadpool   threadpoolctl not installed")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE"):
        if var in os.environ:
            lines.append(f"{var}={os.environ[var]}")
    return "\n".join(lines)


def _user_errors() -> tuple[type[BaseException], ...]:
    from lowdisp.exceptions import CheckpointError, UsageError

    return (
        _ArgumentError,
        UsageError,
        CheckpointError,
        FileNotFoundError,
        FileExistsError,
        NotADirectoryError,
        IsADirectoryError,
        PermissionError,
    )


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        text = f"{exc.strerror}: {exc.filename}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lowdisp`` console script.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status: 0 on success, 2 for a user error (one line
        ``lowdisp: error: ...`` on stderr), 1 for a diverged training run,
        130 after an interrupt. ``--debug`` re-raises the error instead.

    Examples
    --------
    >>> from lowdisp.cli import main
    >>> main(["info"])  # doctest: +SKIP
    0
    >>> main(["train", "--steps", "-5"])  # stderr: lowdisp: error: train: argument --steps: ...
    2
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        parser = _build_parser(_command_name(argv))
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        mod = importlib.import_module(args._module)
        return int(mod.run(args) or 0)
    except _user_errors() as exc:
        if debug:
            raise
        print(f"lowdisp: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug:
            raise
        print("lowdisp: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from lowdisp.nn._trainer import TrainingDivergedError

        if debug or not isinstance(exc, TrainingDivergedError):
            raise
        print(f"lowdisp: error: {_one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
