"""The trainer service's domain code: MotionPrefer records, Algorithm 1 preference pairs,
preference losses (IPO, DPO, KTO) and resumable LoRA training jobs.

Modules import torch and peft lazily where they can: building pairs needs neither.
"""
