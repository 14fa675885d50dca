"""Evaluation of synthetic emotion text (the paper's section IV): embeddings, JAX metrics, LightGBM, report."""
