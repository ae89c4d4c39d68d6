"""Foundation Models Playground: the model registry, the one pipeline cache, and each concept's logic.

No Gradio here. Importing the package first makes torchvision importable on a CPU-only torch
(see `torchvision_compat`), before transformers, open_clip or diffusers can import it.
"""

from playground.core.torchvision_compat import ensure_torchvision_importable

ensure_torchvision_importable()
