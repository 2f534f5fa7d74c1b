"""Networks (from MONAI, built by name) and the model bundle that carries them.

- `build_model(config)`, `register_model(name)`, `MODELS`.
- `save_bundle`, `load_bundle`, `Bundle`: weights.safetensors + plan + card + labels + hashes.
"""

from medsight.models.bundle import Bundle, load_bundle, save_bundle
from medsight.models.registry import MODELS, build_model, register_model

__all__ = ["MODELS", "Bundle", "build_model", "load_bundle", "register_model", "save_bundle"]
