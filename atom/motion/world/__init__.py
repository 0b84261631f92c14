"""The procedural motion world: an embedded stand-in for HumanML3D with ground-truth events."""
