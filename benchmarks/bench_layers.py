"""Benchmark of the structured layers' training step: ``python benchmarks/bench_layers.py
[--quick] [--torch]`` (one BLAS thread; see lowdisp/_bench/layers.py)."""

import argparse

from lowdisp._bench import layers

parser = argparse.ArgumentParser(prog="bench_layers.py")
layers.add_arguments(parser)
raise SystemExit(layers.run(parser.parse_args()))
