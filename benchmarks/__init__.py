"""Benchmarks of the pipeline, each side by side with the naive way (issue 7).

One module per benchmark, each with a ``run(work, quick) -> Result``; ``runner`` runs them and
writes the JSON and the table. Not tests: the suite runs only a quick smoke of the runner
(tests/test_bench_smoke.py). What each figure means: BENCHMARKS.md.
"""
