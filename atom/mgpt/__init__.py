"""MotionGPT model code shared by the generator and the trainer.

- vqvae / quantizer: the motion tokeniser (1-D conv VQ-VAE, EMA codebook), state dict identical to
  the released checkpoint's `vae.` part.
- tokenizer: word-level tokenizer for the small world model, HF T5 tokenizer adapter for
  flan-t5-base, the 515 motion tokens and the motion-as-text format.
- lm: MotionLM (T5 + tokenizer + prompt template), exact per-sequence log-probabilities.
- bundle: a model bundle (VQ-VAE + LM + Mean/Std + info) saved to / loaded from the artifact store.
- checkpoint: safe loading of the released MotionGPT-base Lightning checkpoint.
"""

from atom.mgpt.bundle import BundleError, ModelBundle, bundle_exists, load_bundle, save_bundle
from atom.mgpt.lm import DEFAULT_TEMPLATE, LMError, MotionLM, T5Size, format_prompt, sequence_logprobs
from atom.mgpt.tokenizer import HFTokenizerAdapter, WordTokenizer, load_tokenizer, motion_to_text, text_to_motion
from atom.mgpt.vqvae import VQVAE, VQVAEConfig

__all__ = [
    "BundleError",
    "DEFAULT_TEMPLATE",
    "HFTokenizerAdapter",
    "LMError",
    "ModelBundle",
    "MotionLM",
    "T5Size",
    "VQVAE",
    "VQVAEConfig",
    "WordTokenizer",
    "bundle_exists",
    "format_prompt",
    "load_bundle",
    "load_tokenizer",
    "motion_to_text",
    "save_bundle",
    "sequence_logprobs",
    "text_to_motion",
]
