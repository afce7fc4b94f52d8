# The two set-up commands of the README. Both create .venv first (tools/setup_env.sh).
PYTHON ?= .venv/bin/python

.PHONY: env demo demo-dakd test bench

env:
	bash tools/setup_env.sh

demo: env
	$(PYTHON) tools/demo.py

demo-dakd: env
	$(PYTHON) tools/demo.py --dakd

test: env
	$(PYTHON) -m pytest tests -q

bench: env
	$(PYTHON) tools/benchmarks/bench_baselines.py
