"""drlbench: what quantization and pruning do to deep-RL policies (return, latency, memory, energy)."""

__version__ = "0.1.0"
