"""Reference apps the benchmarks measure the service against."""
