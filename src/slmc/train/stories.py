"""A seeded grammar of simple children's stories: the training corpus of slmc's bundled model.

Why a grammar and not TinyStories: slmc must ship a default model that is reproducible from the
repository alone (no download at build or run time) and small enough to train on two CPU cores
in minutes. A grammar gives both, and it gives something a downloaded corpus cannot: an exact
description of the language, so a test can decide whether the model's output is *in* that
language (`sentence_regex`) instead of eyeballing samples.

Every sentence comes from a template below. Slot values are bound once per story (the hero's
name, pronouns, the object found, the friend) so a story stays coherent; the same templates and
word lists also build the regular expression that recognises every sentence the grammar can emit.
"""

from __future__ import annotations

import random
import re
import string

GIRL_NAMES = ("Lily", "Mia", "Emma", "Sue", "Anna", "Lucy", "Zoe", "Ella", "Sara", "Amy",
              "Kate", "Rose", "Jane", "Molly", "Daisy", "Ruby")
BOY_NAMES = ("Tom", "Ben", "Max", "Sam", "Jack", "Leo", "Tim", "Joe", "Finn", "Bob",
             "Jake", "Noah", "Oliver", "Peter", "Danny", "Luke")
PEOPLE = {"girl": "she", "boy": "he"}
ANIMALS = ("cat", "dog", "bunny", "bear", "bird", "fox", "mouse", "duck", "frog", "puppy",
           "kitten", "lion", "owl", "pig", "squirrel", "turtle")
CHAR_ADJS = ("little", "small", "happy", "kind", "curious", "brave", "shy", "funny", "sweet",
             "tiny", "friendly", "clever", "young", "silly")
PLACES = ("park", "garden", "forest", "beach", "farm", "pond", "hill", "meadow", "playground",
          "zoo", "river", "lake", "backyard", "woods", "field")
HOMES = ("small village", "big city", "little house", "quiet town", "green forest", "sunny farm")
OBJECTS = ("ball", "kite", "doll", "box", "balloon", "toy car", "book", "hat", "flower", "shell",
           "stick", "cake", "apple", "cookie", "boat", "rock", "leaf", "key", "drum", "teddy bear",
           "crayon", "blanket", "egg", "umbrella", "ring", "feather")
OBJ_ADJS = ("red", "big", "shiny", "blue", "soft", "pretty", "old", "new", "yellow", "green",
            "round", "golden", "tiny", "purple", "orange", "funny")
HIDING = ("a tree", "a bush", "the bed", "the table", "a big rock", "the sofa", "a pile of leaves")
ACTIVITIES = ("play", "run", "jump", "sing", "dance", "swim", "read", "draw", "climb trees",
              "explore", "pick flowers", "look at the clouds", "chase butterflies")
RELATIVES = ("mom", "dad", "grandma", "grandpa", "sister", "brother", "teacher", "aunt")
TRAITS = ("kind", "happy", "curious", "brave", "shy", "funny", "smart", "friendly", "gentle")
GOOD_FEELINGS = ("happy", "proud", "glad", "excited", "thankful", "calm")
BAD_FEELINGS = ("sad", "scared", "worried", "upset", "lonely")
REACTIONS = ("smiled", "laughed", "jumped up and down", "clapped", "danced", "sang a song")
LESSONS = ("share", "be kind", "help others", "be careful", "be brave", "say sorry",
           "listen to your friends", "never give up")
WATERS = ("pond", "river", "lake", "mud", "puddle")

OPENINGS = (
    "Once upon a time, there was {a_adj} {kind} named {name}.",
    "Once upon a time, in a {home}, there lived {a_adj} {kind} named {name}.",
    "One day, {a_adj} {kind} named {name} went to the {place}.",
    "There was once {a_adj} {kind} called {name}.",
    "{name} was {a_adj} {kind} who lived near the {place}.",
)
TRAIT_LINES = (
    "{He} loved to {activity} in the {place}.",
    "{He} liked to {activity} with {his} {rel}.",
    "{name} was very {trait}.",
    "Every day, {he} went to the {place} to {activity}.",
)
EVENTS_OBJECT = (
    "One day, {he} found {a_obj} in the {place}.",
    "One day, {he} saw {a_obj} under {hiding}.",
    "One morning, {name} woke up and saw {a_obj} on the floor.",
    "{His} {rel} gave {him} {a_obj}.",
)
EVENTS_FRIEND = (
    "One sunny day, {name} met {a_fadj} {fkind} named {friend}.",
    "At the {place}, {name} saw {a_fadj} {fkind} named {friend}.",
)
LINES_OBJECT = (
    "Look at this {oadj} {obj}!", "I want to play with the {obj}.", "What a nice {obj}!",
    "I love my new {obj}!", "Can I keep the {obj}?", "Where did this {obj} come from?",
)
LINES_FRIEND = (
    "Will you be my friend?", "Can we play together?", "Hello, {friend}!",
    "Let's go to the {place}!", "Do you want to play with me?", "I like your {obj}!",
)
DIALOGUES = ('{name} said, "{line}"', '{He} said, "{line}"', '{name} asked, "{question}"')
PROBLEMS_OBJECT = (
    "But then, the {obj} fell into the {water}.",
    "But the {obj} was stuck in a tall tree.",
    "But then, {he} lost the {obj}.",
    "Then, the {obj} broke into two pieces.",
)
PROBLEMS_FRIEND = ("Suddenly, it started to rain.", "But then, they could not find the way home.")
PROBLEM_FEELINGS = ("{name} felt very {bad}.", "{He} was {bad} and began to cry.")
RESOLUTIONS = (
    "{Helper} helped {him} and everything was fine again.",
    "{name} tried and tried, and at last {he} fixed it.",
    "{He} asked {his} {rel} for help, and together they made it right.",
    "{Helper} came to help, and soon the problem was gone.",
)
FEELINGS = ("{name} felt very {good}.", "{He} was so {good} that {he} {reaction}.",
            '{name} smiled and said, "Thank you!"')
ENDINGS_FRIEND = ("From that day on, {name} and {friend} were best friends.",
                  "They played together all day long.",
                  "{name} and {friend} had the best day ever.")
ENDINGS_OBJECT = ("From that day on, {name} always took good care of the {obj}.",
                  "{name} kept the {obj} in a safe place.")
ENDINGS = ("{name} learned that it is good to {lesson}.",
           "At the end of the day, {name} went home happy.",
           "{He} had the best day ever.")


def _an(word: str) -> str:
    """The indefinite article a story needs before `word` (the grammar has no silent h or 'you-' words)."""
    return "an" if word[0] in "aeiou" else "a"


def _character(rng: random.Random) -> tuple[str, str, str]:
    """A name, a pronoun and a kind (girl, boy, or an animal) that agree with each other."""
    pronoun = rng.choice(("he", "she"))
    name = rng.choice(GIRL_NAMES if pronoun == "she" else BOY_NAMES)
    if rng.random() < 0.5:
        kind = "girl" if pronoun == "she" else "boy"
    else:
        kind = rng.choice(ANIMALS)
    return name, pronoun, kind


def _story_slots(rng: random.Random) -> dict[str, str]:
    """Bind every slot once so all sentences of one story speak of the same hero, friend and object."""
    name, he, kind = _character(rng)
    his, him = ("his", "him") if he == "he" else ("her", "her")
    friend, _, fkind = _character(rng)
    while friend == name:
        friend, _, fkind = _character(rng)
    adj, fadj, oadj = rng.choice(CHAR_ADJS), rng.choice(CHAR_ADJS), rng.choice(OBJ_ADJS)
    obj = rng.choice(OBJECTS)
    return {
        "name": name, "he": he, "He": he.capitalize(), "his": his, "His": his.capitalize(),
        "him": him, "kind": kind, "a_adj": f"{_an(adj)} {adj}", "friend": friend, "fkind": fkind,
        "a_fadj": f"{_an(fadj)} {fadj}", "obj": obj, "oadj": oadj, "a_obj": f"{_an(oadj)} {oadj} {obj}",
        "place": rng.choice(PLACES), "home": rng.choice(HOMES), "hiding": rng.choice(HIDING),
        "activity": rng.choice(ACTIVITIES), "rel": rng.choice(RELATIVES), "trait": rng.choice(TRAITS),
        "good": rng.choice(GOOD_FEELINGS), "bad": rng.choice(BAD_FEELINGS),
        "reaction": rng.choice(REACTIONS), "lesson": rng.choice(LESSONS), "water": rng.choice(WATERS),
    }


def _story(rng: random.Random) -> str:
    """One story of 3 to 8 sentences: opening, optional trait, event, and optional dialogue,
    problem and resolution, feeling, then an ending that fits whether a friend appeared."""
    s = _story_slots(rng)
    out = [rng.choice(OPENINGS)]
    if rng.random() < 0.7:
        out.append(rng.choice(TRAIT_LINES))
    with_friend = rng.random() < 0.4
    out.append(rng.choice(EVENTS_FRIEND if with_friend else EVENTS_OBJECT))
    s["Helper"] = s["friend"] if with_friend else f"{s['His']} {s['rel']}"
    if rng.random() < 0.6:
        lines = LINES_FRIEND if with_friend else LINES_OBJECT
        line = rng.choice(lines).format(**s)
        template = rng.choice(DIALOGUES)
        if template.endswith('"{question}"') and not line.endswith("?"):
            template = DIALOGUES[0]
        out.append(template.replace("{line}", line).replace("{question}", line))
    if rng.random() < 0.5:
        out.append(rng.choice(PROBLEMS_FRIEND if with_friend else PROBLEMS_OBJECT))
        if rng.random() < 0.5:
            out.append(rng.choice(PROBLEM_FEELINGS))
        out.append(rng.choice(RESOLUTIONS))
    if rng.random() < 0.6:
        out.append(rng.choice(FEELINGS))
    endings = ENDINGS_FRIEND if with_friend else ENDINGS_OBJECT
    out.append(rng.choice(endings if rng.random() < 0.6 else ENDINGS))
    if len(out) > 8:  # only reachable with every optional part present: drop the trait line
        del out[1]
    return " ".join(t.format(**s) for t in out)


def generate_stories(n: int, seed: int) -> list[str]:
    """`n` stories from the grammar, a pure function of `seed` (Python's Mersenne Twister is stable
    across versions), so the training corpus and the held-out set are regenerated, never stored."""
    rng = random.Random(seed)
    return [_story(rng) for _ in range(n)]


_SENTENCE_END = re.compile(r'(?<=[.!?])"? ')


def split_sentences(text: str) -> list[str]:
    """Split a story at the spaces the generator put between sentences (no template holds '. ' inside)."""
    parts: list[str] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        end = m.end() - 1
        parts.append(text[start:end])
        start = m.end()
    parts.append(text[start:])
    return [p for p in parts if p]


def _domains() -> dict[str, tuple[str, ...]]:
    """The set of values each slot can take, derived from the same word lists the sampler uses."""
    names = GIRL_NAMES + BOY_NAMES
    kinds = tuple(PEOPLE) + ANIMALS
    a_adj = tuple(f"{_an(a)} {a}" for a in CHAR_ADJS)
    return {
        "name": names, "friend": names, "he": ("he", "she"), "He": ("He", "She"),
        "his": ("his", "her"), "His": ("His", "Her"), "him": ("him", "her"), "kind": kinds,
        "fkind": kinds, "a_adj": a_adj, "a_fadj": a_adj, "obj": OBJECTS, "oadj": OBJ_ADJS,
        "a_obj": tuple(f"{_an(a)} {a} {o}" for a in OBJ_ADJS for o in OBJECTS),
        "place": PLACES, "home": HOMES, "hiding": HIDING, "activity": ACTIVITIES, "rel": RELATIVES,
        "trait": TRAITS, "good": GOOD_FEELINGS, "bad": BAD_FEELINGS, "reaction": REACTIONS,
        "lesson": LESSONS, "water": WATERS,
        "Helper": names + tuple(f"{p} {r}" for p in ("His", "Her") for r in RELATIVES),
    }


def _template_regex(template: str, slots: dict[str, str]) -> str:
    """Literal text escaped, each `{slot}` replaced by the alternation of its values."""
    out = []
    for literal, field, _, _ in string.Formatter().parse(template):
        out.append(re.escape(literal))
        if field is not None:
            out.append(slots[field])
    return "".join(out)


def sentence_regex() -> re.Pattern[str]:
    """A recogniser for exactly the sentences the grammar can emit (slot agreement across a story is
    not checked). Tests use it to decide whether a model's output is grammatical in this world."""
    slots = {k: "(?:" + "|".join(re.escape(v) for v in sorted(vals, key=len, reverse=True)) + ")"
             for k, vals in _domains().items()}
    line_alts = [_template_regex(t, slots) for t in LINES_OBJECT + LINES_FRIEND]
    slots["line"] = "(?:" + "|".join(line_alts) + ")"
    slots["question"] = "(?:" + "|".join(a for a in line_alts if a.endswith(r"\?")) + ")"
    templates = (OPENINGS + TRAIT_LINES + EVENTS_OBJECT + EVENTS_FRIEND + DIALOGUES + PROBLEMS_OBJECT
                 + PROBLEMS_FRIEND + PROBLEM_FEELINGS + RESOLUTIONS + FEELINGS + ENDINGS_FRIEND + ENDINGS_OBJECT + ENDINGS)
    return re.compile("(?:" + "|".join(_template_regex(t, slots) for t in templates) + ")")


def is_grammatical(sentence: str) -> bool:
    """True if `sentence` is one the grammar can produce, word for word."""
    return sentence_regex().fullmatch(sentence) is not None
