"""The procedural motion world: an embedded stand-in for HumanML3D with ground-truth events.

    compose(events, rng, body=None) -> WorldClip      one clip: joints (T, 22, 3) + labels
    captions(events, rng, n=3) -> list[str]           HumanML3D-style paraphrases
    build_corpus(out_dir, num_clips, seed) -> CorpusSummary   the HumanML3D layout on disk

Modules: body (skeleton, FK/IK), track (animation channels -> joints), gait (stepping),
primitives (one builder per event), compose, captions, corpus.
"""

from atom.motion.world.body import Body, BodyError, make_body, random_body
from atom.motion.world.captions import caption, captions
from atom.motion.world.compose import CompositionError, Occurrence, WorldClip, compose
from atom.motion.world.corpus import CorpusError, CorpusSummary, build_clip, build_corpus, make_world_clip

__all__ = [
    "Body",
    "BodyError",
    "make_body",
    "random_body",
    "caption",
    "captions",
    "CompositionError",
    "Occurrence",
    "WorldClip",
    "compose",
    "CorpusError",
    "CorpusSummary",
    "build_clip",
    "build_corpus",
    "make_world_clip",
]
