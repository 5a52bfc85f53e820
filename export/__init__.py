# K of the exported graph's top-K output: `shopstream export --top-k`'s default, and the
# graph bench/bench_inference.py measures
GRAPH_TOP_K = 20
