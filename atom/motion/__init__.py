"""Everything that knows about human motion: HumanML3D skeleton and features, the
procedural motion world, and the kinematic event detector."""
