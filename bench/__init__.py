"""Benchmarks: the embedded registry side by side with the reference registry, the pipe against docker push."""
