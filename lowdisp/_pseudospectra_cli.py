"""``lowdisp pseudospectra FILE|CHECKPOINT|RUN_DIR``: ε-pseudospectra of a stored or trained matrix.

The source is a matrix file (``.npy``, a plain ``.npz``, text), a lowdisp
checkpoint or snapshot (an ``.npz`` with lowdisp metadata), or a run folder
written by ``lowdisp train``. Checkpoints and run folders are resolved with
:func:`lowdisp.nn.weight_matrices`; ``--param NAME`` chooses the matrix
(default: the recurrent matrix ``rnn.cell.W``, else the only square one).
The computation itself is :mod:`lowdisp.spectral._cli` (which must not import
``lowdisp.nn``; this module sits above both).

Examples
--------
>>> from lowdisp.cli import main
>>> main(["pseudospectra", "runs/copy", "--param", "rnn.cell.W"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from lowdisp.exceptions import UsageError
from lowdisp.spectral import _cli as _spectral_cli

__all__ = ["add_arguments", "resolve", "run"]

#: the matrix chosen from a checkpoint or run folder when --param is not given
DEFAULT_PARAM = "rnn.cell.W"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``lowdisp pseudospectra`` (those of the matrix-file command and --param)."""
    _spectral_cli.add_arguments(parser)
    parser.add_argument(
        "--param",
        default=None,
        help=f"which weight matrix of a checkpoint or run folder (default: {DEFAULT_PARAM} "
        "if present, else the only square one); an ambiguous choice lists the names",
    )


def _is_lowdisp_npz(path: Path) -> bool:
    """A checkpoint or snapshot (an .npz with lowdisp's ``meta`` entry)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return "meta" in z.files
    except Exception:
        return False


def _choose(mats: dict[str, Any], param: str | None, source: str) -> tuple[str, Any]:
    square = [k for k, v in mats.items() if len(v.shape) == 2 and v.shape[0] == v.shape[1]]
    if param is not None:
        if param not in mats:
            raise UsageError(
                f"pseudospectra: no weight matrix {param!r} in {source}; valid --param: "
                f"{', '.join(mats)}"
            )
        if param not in square:
            raise UsageError(
                f"pseudospectra: {param} in {source} is {mats[param].shape[0]} x "
                f"{mats[param].shape[1]}, not square; square ones: {', '.join(square) or 'none'}"
            )
        return param, mats[param]
    if DEFAULT_PARAM in square:
        return DEFAULT_PARAM, mats[DEFAULT_PARAM]
    if len(square) == 1:
        return square[0], mats[square[0]]
    if not square:
        raise UsageError(
            f"pseudospectra: {source} holds no square weight matrix (it has {', '.join(mats)})"
        )
    raise UsageError(
        f"pseudospectra: {source} holds {len(square)} square weight matrices; choose one with "
        f"--param: {', '.join(square)}"
    )


def resolve(source: str | Path, *, key: str | None = None, param: str | None = None):
    """``(matrix, name or None, default PNG path)`` for a matrix file, checkpoint or run folder.

    Raises
    ------
    UsageError
        A missing source, an unreadable file, an unknown or non-square
        ``param`` (the message lists the valid names), an ambiguous choice.
    CheckpointError
        A corrupted or spec-less checkpoint (from :func:`lowdisp.nn.weight_matrices`).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from lowdisp._pseudospectra_cli import resolve
    >>> p = os.path.join(tempfile.mkdtemp(), "a.npy"); np.save(p, np.eye(3))
    >>> A, name, out = resolve(p)
    >>> A.shape, name, out.name
    ((3, 3), None, 'a_pseudospectra.png')
    """
    p = Path(source)
    if p.is_dir():
        mats = _weights(p)
        name, A = _choose(mats, param, f"run folder {p}")
        return A, name, p / f"pseudospectra_{name.replace('.', '_')}.png"
    if not p.exists():
        raise UsageError(f"pseudospectra: no such file or folder: {p}")
    if p.suffix.lower() == ".npz" and _is_lowdisp_npz(p):
        if key is not None:
            raise UsageError(
                f"pseudospectra: {p.name} is a lowdisp checkpoint; choose its matrix with "
                f"--param, not --key"
            )
        mats = _weights(p)
        name, A = _choose(mats, param, f"checkpoint {p.name}")
        return A, name, p.with_name(f"{p.stem}_{name.replace('.', '_')}_pseudospectra.png")
    if param is not None:
        raise UsageError(
            f"pseudospectra: --param applies to checkpoints and run folders; {p.name} is a "
            f"matrix file (use --key for a plain .npz)"
        )
    A = _spectral_cli.load_matrix(p, key)
    return A, None, p.with_name(p.stem + "_pseudospectra.png")


def _weights(path: Path) -> dict[str, Any]:
    from lowdisp.nn import weight_matrices

    try:
        return dict(weight_matrices(str(path)))
    except (TypeError, ValueError) as exc:
        from lowdisp.exceptions import CheckpointError

        if isinstance(exc, (CheckpointError, UsageError)):
            raise
        raise UsageError(f"pseudospectra: {' '.join(str(exc).split())}") from exc


def run(args: argparse.Namespace) -> int:
    """``lowdisp pseudospectra``: resolve the source, then compute, plot and report."""
    A, name, default_out = resolve(args.file, key=args.key, param=getattr(args, "param", None))
    return _spectral_cli.run_matrix(A, args, default_out=default_out, name=name)
