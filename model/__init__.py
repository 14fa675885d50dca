"""personagen's persona + scenario model: profiles as data, a NumPyro model, exact analysis.

The public names below are imported on first use (`common.lazy`), so `import model.dialogue.corpus` or
`import model.profile` does not load JAX."""
from common.lazy import lazy_exports

__all__ = ["Profile", "load_profile", "persona_model", "resolve_emotions", "sample_codes", "sample_records"]

__getattr__, __dir__ = lazy_exports(__name__, {
    "Profile": "model.profile", "load_profile": "model.profile", "persona_model": "model.persona",
    "resolve_emotions": "model.emotions", "sample_codes": "model.persona", "sample_records": "model.records",
})
