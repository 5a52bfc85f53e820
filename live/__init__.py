"""The live page: a small companion service that shows one user's window, recommendations
and ad events as they happen, with throughput and latency read from the worker's metrics.

Run it with ``shopstream live``; it reads the output topics and asks the worker over HTTP.
"""
