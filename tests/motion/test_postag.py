"""Rule-based tagger in the HumanML3D token format."""

from __future__ import annotations

import pytest

from atom.motion.events import COUNT_WORDS, EVENT_TYPES
from atom.motion.postag import lemma, tag_builtin as tag, tokenize


def test_humanml3d_example():
    assert tag("a man kicks something or someone with his left leg.") == [
        "a/DET",
        "man/NOUN",
        "kick/VERB",
        "something/PRON",
        "or/CCONJ",
        "someone/PRON",
        "with/ADP",
        "his/DET",
        "left/ADJ",
        "leg/NOUN",
    ]


@pytest.mark.parametrize(
    "caption, expected",
    [
        ("A person jumps forward one time.", "a/DET person/NOUN jump/VERB forward/ADV one/NUM time/NOUN"),
        (
            "A man walks forward, walks backward, and squats.",
            "a/DET man/NOUN walk/VERB forward/ADV walk/VERB backward/ADV and/CCONJ squat/VERB",
        ),
        ("the person is walking in a circle", "the/DET person/NOUN is/AUX walk/VERB in/ADP a/DET circle/NOUN"),
        ("a man does a squat followed by two jumps.", "a/DET man/NOUN do/VERB a/DET squat/NOUN follow/VERB by/ADP two/NUM jump/NOUN"),
        ("he turns to the left", "he/PRON turn/VERB to/ADP the/DET left/NOUN"),
        ("the person raises both arms above the head", "the/DET person/NOUN raise/VERB both/DET arm/NOUN above/ADP the/DET head/NOUN"),
        ("someone stands up and starts to walk", "someone/PRON stand/VERB up/ADP and/CCONJ start/VERB to/PART walk/VERB"),
        ("the figure stomps its feet", "the/DET figure/NOUN stomp/VERB its/DET foot/NOUN"),
        ("a person takes a few steps", "a/DET person/NOUN take/VERB a/DET few/ADJ step/NOUN"),
        ("he claps his hands then bows", "he/PRON clap/VERB his/DET hand/NOUN then/ADV bow/VERB"),
    ],
)
def test_motion_captions(caption, expected):
    assert " ".join(tag(caption)) == expected


def test_format_conventions():
    # Hyphens deleted, punctuation and digits dropped, clitics split off and dropped.
    assert tag("a person side-steps to the left, 3 times!") == [
        "a/DET",
        "person/NOUN",
        "sidestep/VERB",
        "to/ADP",
        "the/DET",
        "left/NOUN",
        "time/NOUN",
    ]
    assert tokenize("doesn't") == ["does", "n't"]
    toks = tag("The person doesn't move; it's still.")
    assert "does/AUX" in toks and not any("'" in t for t in toks)
    assert all(t.split("/")[0].isalpha() and t.split("/")[0].islower() for t in tag("A Person Runs 10 Metres."))
    assert tag("") == [] and tag("...") == []


def test_lemmas():
    assert lemma("walks", "VERB") == "walk"
    assert lemma("running", "VERB") == "run"
    assert lemma("waving", "VERB") == "wave"
    assert lemma("crouches", "VERB") == "crouch"
    assert lemma("carried", "VERB") == "carry"
    assert lemma("feet", "NOUN") == "foot"
    assert lemma("knees", "NOUN") == "knee"
    assert lemma("left", "VERB") == "left"  # HumanML3D keeps "left" as written
    assert lemma("walks", "ADV") == "walks"  # only nouns and verbs are lemmatised
    assert lemma("zoomed", "VERB") == "zoom"  # unknown verb: suffix rules


@pytest.mark.parametrize("event", EVENT_TYPES, ids=lambda e: e.name)
def test_every_event_phrase_has_its_verb(event):
    for phrase in (event.phrase,) + event.paraphrases:
        toks = tag(f"A person {phrase} {COUNT_WORDS[2]}.")
        assert toks[:2] == ["a/DET", "person/NOUN"]
        assert toks[2].endswith("/VERB"), (phrase, toks)
        assert toks[-2:] == ["two/NUM", "time/NOUN"]
        for t in toks:
            word, pos = t.split("/")
            assert word and pos.isupper() and " " not in t and "#" not in t


def test_deterministic():
    caption = "A person walks in a circle, then jumps up and down twice."
    assert tag(caption) == tag(caption)


def test_spacy_tagger_follows_humanml3ds_rule(tmp_path, monkeypatch):
    """With spaCy, new captions are tagged by HumanML3D's own rule (hyphens removed, non-alphabetic
    tokens dropped, nouns and verbs lemmatised except "left"). The pipeline here is spaCy's
    rule-based attribute ruler standing where en_core_web_sm's statistical tagger would be."""
    import spacy

    from atom.motion import postag

    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("attribute_ruler")
    table = {
        "a": ("DET", "a"),
        "person": ("NOUN", "person"),
        "sidesteps": ("VERB", "sidestep"),
        "then": ("ADV", "then"),
        "raises": ("VERB", "raise"),
        "hands": ("NOUN", "hand"),
        "left": ("NOUN", "left"),
        "to": ("ADP", "to"),
        "the": ("DET", "the"),
        "twice": ("ADV", "twice"),
    }
    for word, (pos, base) in table.items():
        ruler.add([[{"LOWER": word}]], {"POS": pos, "LEMMA": base})
    nlp.to_disk(tmp_path / "pipeline")
    monkeypatch.setenv("ATOM_SPACY_MODEL", str(tmp_path / "pipeline"))
    monkeypatch.setenv("ATOM_TAGGER", "spacy")
    caption = "A person side-steps to the left, then raises hands twice."
    assert postag.tag(caption) == [
        "A/DET",
        "person/NOUN",
        "sidestep/VERB",
        "to/ADP",
        "the/DET",
        "left/NOUN",
        "then/ADV",
        "raise/VERB",
        "hand/NOUN",
        "twice/ADV",
    ]
    assert postag.describe_tagger().startswith("spaCy")
    monkeypatch.setenv("ATOM_TAGGER", "builtin")
    assert postag.tag(caption) == postag.tag_builtin(caption) and "built-in" in postag.describe_tagger()
    monkeypatch.setenv("ATOM_TAGGER", "spacy")
    monkeypatch.setenv("ATOM_SPACY_MODEL", str(tmp_path / "no-such-pipeline"))
    with pytest.raises(postag.TaggerError, match="does not load"):
        postag.tag(caption)
    monkeypatch.setenv("ATOM_TAGGER", "auto")
    assert postag.tag(caption) == postag.tag_builtin(caption)  # auto falls back to the built-in tagger
