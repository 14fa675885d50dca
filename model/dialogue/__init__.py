"""Dialogues for emotion recognition in conversation (ERC): a speaker-aware Markov chain over a benchmark's
emotion labels, learned from data with NumPyro, and a dialogue sampler built on the persona model.

- `corpus`: the MELD CSV format, read and written (`read_dialogues`, `read_split`, `meld_csv`), and each
  benchmark's label set (`benchmark_labels`);
- `chain`: the emotion chain's NumPyro model, its exact conjugate fit, its file format (`load_chain`), and its
  `matched` / `balanced` label variants;
- `sampler`: the dialogue model and `sample_dialogues`;
- `analysis`: posterior summaries of a fitted chain and their markdown report;
- `__main__`: the command line, `python -m model.dialogue fit | sample`.

The names below are imported on first use, so `import model.dialogue.corpus` does not load JAX or NumPyro.
"""
from common.lazy import lazy_exports

__all__ = ["CHAINS_DIR", "Chain", "Counts", "benchmark_labels", "chain_model", "count", "fit", "load_chain",
           "main", "posterior", "read_dialogues", "read_split", "sample_dialogues", "sinkhorn", "variant"]

__getattr__, __dir__ = lazy_exports(__name__, {
    "benchmark_labels": ".corpus", "read_dialogues": ".corpus", "read_split": ".corpus",
    "CHAINS_DIR": ".chain", "Chain": ".chain", "Counts": ".chain", "chain_model": ".chain", "count": ".chain",
    "fit": ".chain", "load_chain": ".chain", "posterior": ".chain", "sinkhorn": ".chain", "variant": ".chain",
    "sample_dialogues": ".sampler", "main": ".__main__",
})
