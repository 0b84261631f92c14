"""A small rule-based part-of-speech tagger for motion captions, in the HumanML3D token format.

HumanML3D's texts/<id>.txt store each caption with tokens `word/POS`, made by a statistical
tagger with these conventions, which this module follows:
- hyphens are deleted before tokenising ("side-steps" -> "sidesteps");
- tokens that are not purely alphabetic (punctuation, digits, "n't", "'s") are dropped;
- nouns and verbs are lemmatised ("walks" -> "walk", "feet" -> "foot"), except the word "left";
  every other word is kept as written (lower-cased);
- tags are universal POS tags: VERB NOUN DET ADP NUM AUX PRON ADJ ADV PROPN CCONJ PART SCONJ ...

The tagger is a lexicon for the motion domain plus context rules (a word after a determiner is a
noun, after "to" or an auxiliary a verb, ...) plus suffix rules for unknown words. It is meant to
be good on short third-person motion descriptions, not on general English.

HumanML3D's own tags came from spaCy's `en_core_web_sm` (the dataset's `text_process.py`: hyphens
removed, non-alphabetic tokens dropped, nouns and verbs other than "left" replaced by their lemma,
the coarse POS kept). When spaCy and that model are installed (`pip install 'atom[spacy]'`, then
`python -m spacy download en_core_web_sm`), `tag` uses them with that very rule, so new captions
are tagged as the evaluator's training captions were; otherwise the built-in tagger. ATOM_TAGGER
forces one: "spacy" (an error if it is missing), "builtin", or "auto" (the default);
ATOM_SPACY_MODEL names another spaCy package or a pipeline folder to load instead.
"""

from __future__ import annotations

import os
import re

__all__ = ["tag", "tag_builtin", "tag_with_spacy", "describe_tagger", "tag_words", "tokenize", "lemma", "verb_lemma", "noun_lemma"]

TAGGER_ENV = "ATOM_TAGGER"
SPACY_MODEL_ENV = "ATOM_SPACY_MODEL"
SPACY_MODEL = "en_core_web_sm"


class TaggerError(RuntimeError):
    """The tagger asked for (ATOM_TAGGER=spacy) is not installed."""


# ----------------------------------------------------------------------------------- lexicon


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


DET = _words("a an the his her their its my your our this that these those some any each every another both either neither no all whose")
PRON = _words(
    "he she they it him them i you we me us someone something somebody anyone anything "
    "anybody everyone everything everybody nothing nobody himself herself itself "
    "themselves oneself yourself myself ourselves who whom what which one's hers theirs "
    "mine yours ours"
)
CCONJ = _words("and or but nor yet plus")
SCONJ = _words("while whilst if because though although unless whereas as since till until")
AUX_BE = _words("is are was were be been being am")
MODALS = _words("can could will would shall should may might must ca wo")
AUX_DO = _words("do does did")
AUX_HAVE = _words("have has had having")
NUM = _words(
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy "
    "eighty ninety hundred thousand zero"
)
PART = _words("not to n't")
# Prepositions; several double as adverbs/particles, handled in _tag_adp_like.
ADP = _words(
    "with in on at from of into onto for by towards toward upon against between beside "
    "besides near like during without within past after before than via throughout "
    "amid underneath beneath above below under over up down out off around across along "
    "through about behind inside outside per"
)
ADP_OR_ADV = _words(
    "around across along through about behind inside outside above below under "
    "over up down out off past before after near underneath beneath throughout "
    "in on"
)
PARTICLES = _words("up down out off over")
ADV = _words(
    "forward forwards backward backwards back sideways away upward upwards downward "
    "downwards again then slowly quickly fast rapidly briskly gently carefully lightly "
    "heavily suddenly repeatedly continuously constantly twice once thrice still also "
    "just only very too really quite slightly somewhat almost nearly together apart "
    "ahead here there now later afterwards afterward finally eventually immediately "
    "simultaneously alternately clockwise counterclockwise anticlockwise straight "
    "upright outward outwards inward inwards overhead aside even maybe perhaps when "
    "where how why so soon already first next meanwhile instead rather barely hardly "
    "further farther more less most least well far home high low sideway anymore "
    "altogether forth backwards halfway midway"
)
ADJ = _words(
    "left right slow quick big small large little long short wide narrow full half "
    "other same different whole entire several few many much straight circular curved "
    "sharp deep shallow light heavy hard soft strong weak tall open closed bent stiff "
    "loose tight brief huge tiny steady unsteady careful happy sad angry excited drunk "
    "tired injured old young round single double alternate opposite front rear top "
    "bottom upper lower inner outer middle second third fourth fifth last final "
    "previous initial various diagonal vertical horizontal quick slight wild crazy "
    "random proud confident awkward casual normal regular fancy small big giant "
    "invisible imaginary clockwise certain new own extended raised bended crossed "
    "outstretched slow rhythmic forceful vigorous energetic zigzag lateral other "
    "both sure ready able"
)
# Base forms of verbs of the motion domain (and a few common ones).
VERBS = _words(
    "walk run jog jump hop skip leap turn rotate spin twirl pivot squat crouch kneel sit stand "
    "lie lay rise get go come move step stride march stroll pace shuffle sidestep stumble trip "
    "fall slip slide climb crawl roll wave raise lift lower drop kick punch hit strike box clap "
    "bow bend lean stretch reach swing shake nod twist circle throw toss catch grab pick put "
    "place hold carry push pull drag tap touch rub scratch wipe brush point dance perform do "
    "make take give keep start begin stop pause continue finish return repeat end look watch "
    "balance stagger limp sway rock bounce dribble shoot swim fly flap flex extend cross fold "
    "open close hug rest wait stay wiggle jiggle wobble stomp stamp jab lunge hunch drink eat "
    "wash play spread tilt swipe sweep mop clean paint write stir pour cut hammer saw knock dig "
    "shovel row paddle ski skate cartwheel flip somersault shrug salute applaud cheer "
    "celebrate sneak tiptoe hurry rush chase bat golf serve shift transfer travel proceed "
    "approach retreat advance tuck descend ascend mount dismount pump curl press yawn sneeze "
    "cough seem appear try begin use want need like bring set let head face bring land "
    "alternate kneel squeeze grasp rotate revolve hop kickbox swat slap smack stab throw "
    "wave scoop spread lay guard defend block dodge duck crouch sprint trot gallop skip waddle "
    "hobble creep bend flail wriggle stagger shimmy sashay strut swagger prance jump bob "
    "pose mime pretend imitate act mimic gesture signal beckon motion point indicate show "
    "stir fan stomp bend arch straighten sweep knead jumprope lean lunge stoop bend squat "
    "hunch slouch sag drop collapse tumble plop flop sink settle recline relax tense brace "
    "steady center centre position adjust align"
)
NOUNS = _words(
    "man person woman guy girl boy lady gentleman figure individual human child kid body head "
    "neck shoulder arm elbow wrist hand finger thumb fist palm chest torso back waist hip leg "
    "thigh knee shin calf ankle foot toe heel side front direction way ground floor air place "
    "spot position pose stance circle line path time step pace distance motion movement "
    "gesture object ball box chair stool table wall door stair staircase ladder rope bar "
    "weight dumbbell bag cup glass phone middle center centre start end beginning degree angle "
    "half quarter turn jump kick squat lunge punch wave bow spin walk run jog hop clap stretch "
    "push pull throw catch swing dance routine exercise pushup situp jack area room rail "
    "handrail railing beam obstacle item thing piece top bottom tip pair set series sequence "
    "couple moment second bit lot rhythm tempo speed manner fashion style arc loop zigzag "
    "square triangle eight cartwheel somersault flip crawl march shuffle salute hug knee "
    "body ground mouth face eye ear hair nose lap belly stomach butt buttock bottom rib skin "
    "partner someone opponent crowd audience music beat song rhythm counter clock slope hill "
    "step edge corner sidestep jab hook uppercut gun bat racket club bow arrow sword "
    "stick pole broom mop bucket bottle drink food plate pan pot ball frisbee kite tree "
    "rope block brick stone rock bench bed sofa couch car wheel bike bicycle horse dog cat "
    "instrument guitar violin drum piano microphone hat shirt pants shoe sock yoga karate "
    "boxing golf tennis baseball basketball football soccer volleyball swimming skiing "
    "breaststroke freestyle backstroke stroke pattern shape figure fashion manner"
)

IRREGULAR_VERBS = {
    "ran": "run",
    "running": "run",
    "sat": "sit",
    "sitting": "sit",
    "stood": "stand",
    "took": "take",
    "taken": "take",
    "threw": "throw",
    "thrown": "throw",
    "went": "go",
    "gone": "go",
    "goes": "go",
    "got": "get",
    "gotten": "get",
    "getting": "get",
    "put": "put",
    "putting": "put",
    "swung": "swing",
    "held": "hold",
    "knelt": "kneel",
    "kneeled": "kneel",
    "lay": "lie",
    "lies": "lie",
    "lying": "lie",
    "lain": "lie",
    "fell": "fall",
    "fallen": "fall",
    "made": "make",
    "did": "do",
    "does": "do",
    "done": "do",
    "doing": "do",
    "has": "have",
    "had": "have",
    "having": "have",
    "bent": "bend",
    "spun": "spin",
    "caught": "catch",
    "struck": "strike",
    "began": "begin",
    "begun": "begin",
    "came": "come",
    "rose": "rise",
    "risen": "rise",
    "shook": "shake",
    "shaken": "shake",
    "leapt": "leap",
    "hit": "hit",
    "kept": "keep",
    "left": "leave",
    "brought": "bring",
    "crept": "creep",
    "slid": "slide",
    "flew": "fly",
    "flies": "fly",
    "tries": "try",
    "tried": "try",
    "carries": "carry",
    "carried": "carry",
    "stepped": "step",
    "stepping": "step",
    "hopped": "hop",
    "hopping": "hop",
    "skipped": "skip",
    "skipping": "skip",
    "jogged": "jog",
    "jogging": "jog",
    "dropped": "drop",
    "dropping": "drop",
    "tapped": "tap",
    "tapping": "tap",
    "clapped": "clap",
    "clapping": "clap",
    "spinning": "spin",
    "swimming": "swim",
    "swam": "swim",
    "drank": "drink",
    "ate": "eat",
    "eaten": "eat",
    "wrote": "write",
    "written": "write",
    "cut": "cut",
    "set": "set",
    "let": "let",
    "shot": "shoot",
    "dug": "dig",
    "saw": "see",
    "seen": "see",
    "gave": "give",
    "given": "give",
    "tripped": "trip",
    "tripping": "trip",
    "slipped": "slip",
    "slipping": "slip",
    "flipped": "flip",
    "flipping": "flip",
    "grabbed": "grab",
    "grabbing": "grab",
    "dragged": "drag",
    "dragging": "drag",
    "stopped": "stop",
    "stopping": "stop",
    "stirred": "stir",
    "stirring": "stir",
    "rubbed": "rub",
    "rubbing": "rub",
    "squatted": "squat",
    "squatting": "squat",
    "shrugged": "shrug",
    "nodded": "nod",
    "nodding": "nod",
    "patted": "pat",
    "patting": "pat",
    "bobbed": "bob",
    "bobbing": "bob",
    "strutted": "strut",
    "strutting": "strut",
    "wagged": "wag",
    "swept": "sweep",
    "stole": "steal",
    "led": "lead",
    "fed": "feed",
    "felt": "feel",
    "found": "find",
    "told": "tell",
    "said": "say",
    "thought": "think",
    "understood": "understand",
    "woke": "wake",
    "wore": "wear",
    "sought": "seek",
    "dealt": "deal",
    "meant": "mean",
    "lit": "light",
    "sprang": "spring",
    "sprung": "spring",
    "clung": "cling",
    "flung": "fling",
    "slung": "sling",
    "stuck": "stick",
    "stung": "sting",
    "strode": "stride",
    "spat": "spit",
    "sank": "sink",
    "sunk": "sink",
    "bit": "bite",
    "bitten": "bite",
    "hid": "hide",
    "hidden": "hide",
    "drew": "draw",
    "drawn": "draw",
    "grew": "grow",
    "grown": "grow",
    "knew": "know",
    "known": "know",
    "blew": "blow",
    "blown": "blow",
    "tore": "tear",
    "torn": "tear",
    "beat": "beat",
    "beaten": "beat",
    "became": "become",
    "laid": "lay",
    "paid": "pay",
    "sent": "send",
    "spent": "spend",
    "built": "build",
    "lost": "lose",
    "met": "meet",
    "sold": "sell",
    "won": "win",
}
IRREGULAR_NOUNS = {
    "feet": "foot",
    "men": "man",
    "women": "woman",
    "people": "person",
    "children": "child",
    "teeth": "tooth",
    "knives": "knife",
    "calves": "calf",
    "halves": "half",
    "shelves": "shelf",
    "mice": "mouse",
    "geese": "goose",
    "lives": "life",
    "wolves": "wolf",
    "leaves": "leaf",
    "persons": "person",
    "guys": "guy",
    "boxes": "box",
    "stairs": "stair",
    "glasses": "glass",
    "toes": "toe",
    "heroes": "hero",
    "species": "species",
    "series": "series",
}
# Participles that make "has/have/had" an auxiliary.
_PARTICIPLE = re.compile(r"(?:ed|en|wn|un|ung|ught|ought|one|lt|pt)$")

# ----------------------------------------------------------------------------------- lemmas


def _verb_candidates(word: str) -> list[str]:
    c: list[str] = []
    if word.endswith("ies") and len(word) > 4:
        c.append(word[:-3] + "y")
    if word.endswith("es") and len(word) > 3:
        c.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss") and len(word) > 2:
        c.append(word[:-1])
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) > len(suffix) + 1:
            stem = word[: -len(suffix)]
            if suffix == "ed" and stem.endswith("i"):
                c.append(stem[:-1] + "y")
            c += [stem, stem + "e"]
            if len(stem) > 2 and stem[-1] == stem[-2]:
                c.append(stem[:-1])
    return c


def verb_lemma(word: str) -> str | None:
    """Base form if `word` is a form of a known verb, else None."""
    if word in IRREGULAR_VERBS:
        return IRREGULAR_VERBS[word]
    if word in VERBS:
        return word
    for cand in _verb_candidates(word):
        if cand in VERBS:
            return cand
    return None


def noun_lemma(word: str) -> str | None:
    """Singular if `word` is a form of a known noun, else None."""
    if word in IRREGULAR_NOUNS:
        return IRREGULAR_NOUNS[word]
    if word in NOUNS:
        return word
    for cand in (
        (word[:-3] + "y") if word.endswith("ies") else None,
        word[:-2] if word.endswith("es") else None,
        word[:-1] if word.endswith("s") and not word.endswith("ss") else None,
    ):
        if cand and cand in NOUNS:
            return cand
    return None


def _guess_verb_lemma(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if re.search(r"(?:ch|sh|ss|x|z)es$", word):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            stem = word[: -len(suffix)]
            if suffix == "ed" and stem.endswith("i"):
                return stem[:-1] + "y"
            if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "lsz":
                return stem[:-1]
            # "waving" -> "wave": a vowel + single soft consonant usually lost an e.
            if re.search(r"[^aeiou][aeiou][vcgzs]$", stem):
                return stem + "e"
            return stem
    return word


def _guess_noun_lemma(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if re.search(r"(?:ch|sh|ss|x|z)es$", word):
        return word[:-2]
    if word.endswith("s") and not re.search(r"(?:ss|us|is)$", word) and len(word) > 3:
        return word[:-1]
    return word


def lemma(word: str, pos: str) -> str:
    """The HumanML3D surface form: nouns and verbs lemmatised (except "left"), others as is."""
    word = word.lower()
    if word == "left" or pos not in ("NOUN", "VERB"):
        return word
    if pos == "VERB":
        return verb_lemma(word) or _guess_verb_lemma(word)
    return noun_lemma(word) or _guess_noun_lemma(word)


# ----------------------------------------------------------------------------------- tokens

_TOKEN = re.compile(r"[a-z]+(?=n't)|n't|[a-z]+|'[a-z]+|[0-9]+(?:\.[0-9]+)?|\S")


def tokenize(caption: str) -> list[str]:
    """Lower-case tokens, hyphens deleted, clitics split off ("doesn't" -> "does", "n't")."""
    return _TOKEN.findall(caption.lower().replace("-", ""))


# ----------------------------------------------------------------------------------- tagging

_NOUN_PHRASE_START = DET | NUM | frozenset({"left", "right"})
_SUBJECT_PRON = _words("he she they it i you we someone somebody everyone one who that which")
_SUFFIX_ADJ = re.compile(r"(?:ous|ful|ive|able|ible|al|ic|less|ish|ary|ular)$")
_SUFFIX_NOUN = re.compile(r"(?:tion|sion|ment|ness|ity|ance|ence|ship|ism|ist|er|or|ure)$")


def _is_nounish(word: str | None) -> bool:
    if word is None:
        return False
    return noun_lemma(word) is not None or word in ADJ or word in NUM


def _starts_np(word: str | None) -> bool:
    """Does `word` open a noun phrase (object of a preposition)?"""
    if word is None or not word.isalpha():
        return False
    return (
        word in _NOUN_PHRASE_START
        or word in ("him", "her", "them", "it", "me", "us", "you", "himself", "herself", "themselves", "itself", "someone", "something")
        or (noun_lemma(word) is not None and verb_lemma(word) is None)
        or word in ADJ
    )


def tag_words(words: list[str]) -> list[tuple[str, str]]:
    """(word, POS) for every token, punctuation included (as PUNCT / NUM / X)."""
    tags: list[str] = []
    for i, w in enumerate(words):
        tags.append(_tag_one(words, i, tags))
    return list(zip(words, tags))


def _tag_one(words: list[str], i: int, tags: list[str]) -> str:
    w = words[i]
    prev_w = words[i - 1] if i > 0 else None
    prev_t = tags[i - 1] if i > 0 else None
    next_w = words[i + 1] if i + 1 < len(words) else None
    next2_w = words[i + 2] if i + 2 < len(words) else None
    if not w.isalpha():
        if w == "n't":
            return "PART"
        if w[0].isdigit():
            return "NUM"
        return "PUNCT" if not w[0].isalpha() and w[0] != "'" else "PART"

    after_det = prev_t in ("DET", "ADJ", "NUM")
    # ---- words whose tag hinges on the neighbours
    if w in ("left", "right"):
        if _is_nounish(next_w) and next_w not in ("left", "right") and next_w not in NUM:
            return "ADJ"
        if prev_t == "DET":
            return "NOUN"
        if w == "left" and prev_t in ("NOUN", "PRON") and prev_w in _SUBJECT_PRON | NOUNS:
            return "VERB"
        return "ADV"
    if w == "back":
        if prev_t == "DET":
            return "NOUN"
        return "ADV"
    if w == "to":
        nxt_verb = next_w is not None and next_w in VERBS and next_w not in DET
        return "PART" if next_w is not None and nxt_verb and not (noun_lemma(next_w) and next_w in ("side", "front", "back")) else "ADP"
    if w in ("that", "this", "these", "those"):
        if _is_nounish(next_w) and verb_lemma(next_w or "") is None or next_w in DET | ADJ:
            return "DET"
        if w == "that" and prev_t == "NOUN":
            return "PRON"
        return "DET" if w != "that" else "SCONJ"
    if w == "her":
        return "DET" if _is_nounish(next_w) else "PRON"
    if w in AUX_DO:
        if next_w in ("n't", "not") or (next_w in VERBS and not _starts_np(next_w) and noun_lemma(next_w) is None):
            return "AUX"
        return "VERB"
    if w in AUX_HAVE:
        if next_w in ("n't", "not") or (
            next_w is not None
            and (next_w in IRREGULAR_VERBS or _PARTICIPLE.search(next_w))
            and verb_lemma(next_w) is not None
            and next_w not in DET
        ):
            return "AUX"
        return "VERB"
    if w in AUX_BE or w in MODALS:
        return "AUX"
    if w in ("before", "after") and next_w in _SUBJECT_PRON:
        return "SCONJ"
    if w in ADP_OR_ADV:
        counted = next_w in NUM and next2_w in ("time", "times")  # "spins around three times"
        if _starts_np(next_w) and not counted:
            return "ADP"
        if w in PARTICLES and (prev_t == "VERB" or (prev_t == "PRON" and i > 1 and tags[i - 2] == "VERB")):
            return "ADP"  # phrasal-verb particle ("stands up", "puts it down"), tagged ADP like RP
        if w in ("in", "on"):
            return "ADP"
        return "ADV"
    if w == "one":
        return "NUM"
    if w == "first":
        return "ADJ" if _is_nounish(next_w) else "ADV"
    if w == "then" or w == "once" or w == "twice":
        return "ADV"

    # ---- closed classes
    for closed, pos in ((DET, "DET"), (PRON, "PRON"), (CCONJ, "CCONJ"), (SCONJ, "SCONJ"), (NUM, "NUM"), (PART, "PART"), (ADP, "ADP")):
        if w in closed:
            return pos

    # ---- open classes
    vl = verb_lemma(w)
    nl = noun_lemma(w)
    if w in ADV and w in ADJ:
        return "ADJ" if _is_nounish(next_w) and next_w not in ADV else "ADV"
    if w in ADV and vl is None and nl is None:
        return "ADV"
    if w in ADJ and vl is None and (nl is None or _is_nounish(next_w)):
        return "ADJ"
    if vl is not None and nl is not None:
        return _noun_or_verb(w, prev_w, prev_t, tags)
    if vl is not None:
        if after_det and (w.endswith("ing") or w.endswith("ed")):
            return "NOUN" if w.endswith("ing") and not _is_nounish(next_w) else "ADJ"
        return "VERB"
    if nl is not None:
        return "NOUN"
    if w in ADV:
        return "ADV"
    if w in ADJ:
        return "ADJ"

    # ---- unknown words: suffixes and context
    if w.endswith("ly") and len(w) > 4:
        return "ADV"
    if w.endswith("ing") and len(w) > 5:
        return "NOUN" if prev_t == "DET" else "VERB"
    if w.endswith("ed") and len(w) > 4:
        return "ADJ" if after_det else "VERB"
    if _SUFFIX_ADJ.search(w) and len(w) > 5:
        return "ADJ"
    if _SUFFIX_NOUN.search(w) and len(w) > 4:
        return "NOUN"
    if w.endswith("s") and not w.endswith("ss") and prev_t in ("PRON", "NOUN") and not after_det:
        return "VERB"
    if prev_t in ("PRON",) and prev_w in _SUBJECT_PRON:
        return "VERB"
    return "NOUN"


def _noun_or_verb(w: str, prev_w: str | None, prev_t: str | None, tags: list[str]) -> str:
    """A word that is both a known noun and a known verb ("walks", "turn", "kick")."""
    if prev_t in ("DET", "ADJ", "NUM"):
        return "NOUN"
    if prev_t in ("PART", "AUX") or prev_w in ("to",):
        return "VERB"
    if w.endswith("ing") or (w.endswith("ed") and w not in NOUNS):
        return "VERB"
    if prev_t == "ADP":
        return "NOUN"
    if prev_t in ("NOUN", "PRON") and prev_w is not None and (prev_w in _SUBJECT_PRON or noun_lemma(prev_w)):
        return "VERB"
    if prev_t == "VERB":
        return "NOUN"  # "does squats", "takes steps"
    if prev_t is None or prev_t == "PUNCT":
        return "VERB"  # caption starting with an imperative or a bare verb
    if prev_t in ("CCONJ", "ADV", "SCONJ") and "VERB" in tags:
        return "VERB"  # "walks forward and turns", "then jumps"
    return "VERB" if w.endswith("s") else "NOUN"


_NLP: dict[str, object] = {}


def _spacy_pipeline():
    """spaCy's en_core_web_sm when installed and not turned off, else None (loaded once)."""
    mode = os.environ.get(TAGGER_ENV, "auto").strip().lower() or "auto"
    if mode not in ("auto", "spacy", "builtin"):
        raise TaggerError(f"{TAGGER_ENV}={mode!r}: use auto, spacy or builtin")
    if mode == "builtin":
        return None
    name = os.environ.get(SPACY_MODEL_ENV, "").strip() or SPACY_MODEL
    if name not in _NLP:
        try:
            import spacy

            _NLP[name] = spacy.load(name, exclude=["parser", "ner"])
        except (ImportError, OSError, ValueError) as exc:
            _NLP[name] = None
            _NLP[f"why:{name}"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    if _NLP[name] is None and mode == "spacy":
        raise TaggerError(
            f"{TAGGER_ENV}=spacy but the spaCy pipeline {name!r} does not load "
            f"({_NLP.get(f'why:{name}')}); pip install 'atom[spacy]' and "
            f"python -m spacy download {SPACY_MODEL}"
        )
    return _NLP[name]


def describe_tagger() -> str:
    """Which tagger `tag` uses here, for reports."""
    nlp = _spacy_pipeline()
    if nlp is None:
        return "the built-in rule-based tagger (atom.motion.postag)"
    meta = getattr(nlp, "meta", {}) or {}
    name = f"{meta.get('lang', '')}_{meta.get('name', '')}".strip("_") or SPACY_MODEL
    return f"spaCy {name} {meta.get('version', '')} (HumanML3D's tagging rule)"


def tag_with_spacy(caption: str, nlp) -> list[str]:
    """HumanML3D's text_process rule over a spaCy pipeline's tokens."""
    out = []
    for token in nlp(caption.replace("-", "")):
        word = token.text
        if not word.isalpha():
            continue
        keep = token.lemma_ if token.pos_ in ("NOUN", "VERB") and word != "left" else word
        out.append(f"{keep}/{token.pos_}")
    return out


def tag(caption: str) -> list[str]:
    """HumanML3D tokens `word/POS` for a caption: spaCy's en_core_web_sm when installed (the tagger
    HumanML3D used), else the built-in tagger. Deterministic for a given installation."""
    nlp = _spacy_pipeline()
    return tag_with_spacy(caption, nlp) if nlp is not None else tag_builtin(caption)


_TAGGED_TOKEN = re.compile(r"[^/\s]+/[A-Za-z_]+")


def caption_tokens(caption: str) -> list[str]:
    """`word/POS` tokens of a caption: a pre-tagged 'w/P w/P' caption (HumanML3D's texts) as it is,
    free text (composed prompts) tagged by `tag`."""
    parts = caption.split()
    if parts and all(_TAGGED_TOKEN.fullmatch(p) for p in parts):
        return parts
    return tag(caption)


def tag_builtin(caption: str) -> list[str]:
    """HumanML3D tokens `word/POS` by the built-in rules. Deterministic; never raises on text."""
    out = []
    for word, pos in tag_words(tokenize(caption)):
        if not word.isalpha():  # HumanML3D drops non-alphabetic tokens
            continue
        out.append(f"{lemma(word, pos)}/{pos}")
    return out
