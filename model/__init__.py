"""personagen's persona + scenario model: profiles as data, a NumPyro model, exact analysis."""
from model.emotions import resolve_emotions
from model.errors import UsageError
from model.persona import persona_model, sample_codes
from model.profile import Profile, load_profile
from model.records import sample_records

__all__ = ["Profile", "UsageError", "load_profile", "persona_model", "resolve_emotions", "sample_codes",
           "sample_records"]
