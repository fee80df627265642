"""Dask clients for lowdisp's distributed work (private; ``dask[distributed]`` is optional).

``dask.distributed`` is imported only inside these functions, so ``import
lowdisp`` never loads it and everything works without it installed (the
callers then run serially and say so). Install it with
``pip install 'lowdisp[distributed]'``.

- :func:`import_distributed` imports ``dask.distributed`` or raises an
  :class:`ImportError` naming the caller and the extra to install;
- :func:`get_client` connects to a scheduler address or starts a
  ``LocalCluster`` of worker *processes* (one thread each) on the loopback
  interface, with a short connection timeout;
- :func:`close_client` closes a client and the ``LocalCluster`` it started;
- :func:`client_session` does both around a ``with`` block.

Examples
--------
>>> from lowdisp._dask import get_client
>>> get_client("tcp://127.0.0.1:1", timeout=1)  # doctest: +SKIP
Traceback (most recent call last):
...
ConnectionError: get_client: cannot reach a Dask scheduler at tcp://127.0.0.1:1 (...)
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from lowdisp._validation import check_int, check_positive

__all__ = [
    "DISTRIBUTED_HINT",
    "client_session",
    "close_client",
    "distributed_available",
    "get_client",
    "import_distributed",
]

#: how to install the optional dependency (quoted in every message about it)
DISTRIBUTED_HINT = "pip install 'lowdisp[distributed]' (or 'dask[distributed]')"


def distributed_available() -> bool:
    """Whether ``dask.distributed`` can be imported (it is then imported).

    Examples
    --------
    >>> from lowdisp._dask import distributed_available
    >>> isinstance(distributed_available(), bool)
    True
    """
    try:
        import_distributed()
    except ImportError:
        return False
    return True


def import_distributed(where: str = "lowdisp") -> Any:
    """The ``dask.distributed`` module, or an :class:`ImportError` naming ``where``.

    Examples
    --------
    >>> from lowdisp._dask import import_distributed
    >>> import_distributed("sweep").__name__  # doctest: +SKIP
    'dask.distributed'
    """
    try:
        import dask.distributed as dd
    except ImportError as exc:
        raise ImportError(
            f"{where}: needs dask.distributed, which is not installed ({exc}); {DISTRIBUTED_HINT}"
        ) from exc
    return dd


def get_client(
    scheduler: str | None = None,
    *,
    workers: int | None = None,
    timeout: float = 10.0,
    where: str = "get_client",
) -> Any:
    """A ``dask.distributed.Client``: on a scheduler address, or on a new local cluster.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running Dask scheduler (``"tcp://host:8786"``), e.g. one
        started by ``dask scheduler`` or by ``dask-jobqueue``. If not given, a
        ``LocalCluster`` is started: ``workers`` worker processes with one
        thread each (the computations are NumPy/BLAS-bound and hold the GIL
        between calls), on ``127.0.0.1`` only, no dashboard.
    workers : int, optional
        Worker processes of the local cluster (default ``os.cpu_count()``);
        only without ``scheduler``.
    timeout : float
        Seconds to wait for the scheduler to answer (default 10).
    where : str
        The caller's name, at the start of every error message.

    Returns
    -------
    distributed.Client
        Not set as Dask's default client. Close it with :func:`close_client`
        (which also closes the local cluster it started), or use
        :func:`client_session`.

    Raises
    ------
    ImportError
        ``dask.distributed`` is not installed (the message says how to
        install it).
    ConnectionError
        No scheduler answered at ``scheduler`` within ``timeout`` seconds,
        or the address is malformed.
    ValueError
        ``workers`` < 1, ``workers`` given with ``scheduler``, ``timeout`` <= 0.

    Examples
    --------
    >>> from lowdisp._dask import close_client, get_client
    >>> client = get_client(workers=1)  # doctest: +SKIP
    >>> client.submit(sum, [1, 2]).result()  # doctest: +SKIP
    3
    >>> close_client(client)  # doctest: +SKIP
    """
    timeout = check_positive(timeout, "timeout", where=where)
    if workers is not None:
        workers = check_int(workers, "workers", where=where, low=1)
        if scheduler is not None:
            raise ValueError(
                f"{where}: workers= starts a local cluster and cannot be combined with a "
                f"scheduler address ({scheduler!r}); the scheduler's workers are used"
            )
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise ValueError(
            f"{where}: scheduler must be an address such as 'tcp://127.0.0.1:8786'; "
            f"got {scheduler!r}"
        )
    dd = import_distributed(where)
    if scheduler is not None:
        try:
            _probe(scheduler, timeout)  # a refused TCP port fails at once, without a Client
            return dd.Client(scheduler, timeout=timeout, set_as_default=False)
        except (OSError, ValueError, TypeError) as exc:  # unreachable, refused, malformed
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise ConnectionError(
                f"{where}: cannot reach a Dask scheduler at {scheduler} ({detail}; timeout "
                f"{timeout:g} s); start one (dask scheduler) or check the address"
            ) from exc
    cluster = dd.LocalCluster(
        n_workers=workers or os.cpu_count() or 1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        # the scheduler's HTTP server listens even without a dashboard: a free port,
        # not 8787 (taken by any other cluster on the machine, with a warning)
        dashboard_address="127.0.0.1:0",
        silence_logs=logging.ERROR,
    )
    try:
        return dd.Client(cluster, timeout=timeout, set_as_default=False)
    except BaseException:
        cluster.close()
        raise


def _probe(address: str, timeout: float) -> None:
    """Open and close a TCP connection to a ``tcp://host:port`` address (OSError if
    nothing listens); other schemes are left to the Client."""
    import socket

    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port
    from distributed.comm.registry import backends

    scheme, location = parse_address(address)
    if scheme not in backends:
        raise ValueError(f"unknown address scheme {scheme!r}; known: {', '.join(sorted(backends))}")
    if scheme != "tcp":
        return
    host, port = parse_host_port(location)
    with socket.create_connection((host, port), timeout=timeout):
        pass


def close_client(client: Any) -> None:
    """Close ``client`` and, if :func:`get_client` started one for it, its local cluster.

    Examples
    --------
    >>> from lowdisp._dask import close_client, get_client
    >>> close_client(get_client(workers=1))  # doctest: +SKIP
    """
    cluster = getattr(client, "cluster", None)
    try:
        client.close()
    finally:
        if cluster is not None:
            cluster.close()


@contextlib.contextmanager
def client_session(
    scheduler: str | None = None,
    *,
    workers: int | None = None,
    timeout: float = 10.0,
    where: str = "get_client",
) -> Iterator[Any]:
    """``with client_session(...) as client:`` :func:`get_client`, then :func:`close_client`.

    Examples
    --------
    >>> from lowdisp._dask import client_session
    >>> with client_session(workers=1) as client:  # doctest: +SKIP
    ...     client.submit(abs, -2).result()
    2
    """
    client = get_client(scheduler, workers=workers, timeout=timeout, where=where)
    try:
        yield client
    finally:
        close_client(client)
