"""`transflower bench`: latency, floor and quality benchmarks (tables, JSON, plots)."""
