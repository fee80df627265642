"""Benchmark of the structured layers' training step: ``python benchmarks/bench_layers.py
[--quick] [--torch]`` (one BLAS thread; see lowdisp/_bench/layers.py)."""

from lowdisp._bench import main

raise SystemExit(main("layers"))
