"""Today's (pre-prompt-set) message builders, kept verbatim as the reference the shipped `en` set must equal."""
from common.schema import stage_key
from model.dialogue.corpus import speaker_name

_SUBJECT = {
    1: "a person's basic attributes",
    2: "a person's basic attributes and socio-cultural background",
    3: "a person, their background, and the situation and style in which they are writing",
}


def _lines(attributes, labels):
    return "\n".join(f"- {labels.get(name, name.replace('_', ' '))}: {value}" for name, value in attributes.items())


def persona_lines(record, labels):
    return "\n".join(_lines(record[k], labels) for k in map(stage_key, (1, 2)) if record.get(k))


def validation_messages(record, stage, labels):
    groups = map(stage_key, range(1, stage + 1))
    described = "\n".join(_lines(record[k], labels) for k in groups if record.get(k))
    return [
        {
            "role": "system",
            "content": "You judge whether descriptions of people are realistic. Answer only with a JSON object "
            '{"label": ..., "reason": ...} where label is "natural", "rare but plausible" or "implausible" '
            "and reason is one short sentence.",
        },
        {
            "role": "user",
            "content": f"Here is {_SUBJECT[stage]}:\n{described}\n\n"
            "Taken together, is this combination natural, rare but plausible, or implausible?",
        },
    ]


def generation_messages(record, labels, *, text_format="short message", context=None, forbid_label=False):
    persona = persona_lines(record, labels)
    situation = _lines(record.get(stage_key(3)) or {}, labels)
    emotion = record["emotion"]
    parts = [f"You are this person:\n{persona}"]
    if situation:
        parts.append(f"Your situation and writing style:\n{situation}")
    if context:
        parts.append(f"Setting: {context}")
    ask = (
        f"Write one {text_format} of one or two short sentences that you would write right now, "
        f"clearly expressing {emotion}."
    )
    if forbid_label:
        ask += f' Do not use the word "{emotion}".'
    parts.append(ask + " Write only the message itself, in your own voice.")
    return [
        {
            "role": "system",
            "content": "You write realistic short texts in the voice of the person described. "
            'Answer only with a JSON object {"text": ...}.',
        },
        {"role": "user", "content": "\n\n".join(parts)},
    ]


def score_messages(text, emotion):
    return [
        {
            "role": "system",
            "content": "You rate short texts. Answer only with a JSON object {\"score\": n} where n is an integer "
            "from 1 (does not express the emotion at all) to 5 (expresses it clearly and naturally).",
        },
        {"role": "user", "content": f"Target emotion: {emotion}\nText: {text}\n\n"
         "How well does the text express the target emotion?"},
    ]


def judge_messages(text, emotion, criteria):
    lines = "\n".join(f"- {key} ({name}): {meaning}" for key, (name, meaning) in criteria.items())
    keys = ", ".join(f'"{key}": n' for key in criteria)
    return [
        {
            "role": "system",
            "content": "You evaluate how human-like short texts are. Score each criterion on a five-point scale, "
            f"1 (very poor) to 5 (excellent). Answer only with a JSON object {{{keys}}} of integers 1-5.",
        },
        {"role": "user", "content": f"Designated emotion: {emotion}\nText: {text}\n\nCriteria:\n{lines}"},
    ]


def dialogue_messages(dialogue, labels):
    people = "\n\n".join(f"{speaker_name(s['speaker'])}:\n{persona_lines(s, labels)}" for s in dialogue["speakers"])
    setting = "\n".join(f"- {labels.get(k, k)}: {v}" for k, v in dialogue["setting"].items())
    order = "\n".join(f"{i + 1}. {speaker_name(t['speaker'])}: {t['emotion']}" for i, t in enumerate(dialogue["turns"]))
    user = (
        f"The speakers:\n\n{people}\n\nTheir relationship: {dialogue['relationship']}\nThe setting:\n{setting}\n\n"
        f"Write their conversation as exactly {dialogue['n_turns']} turns, in this order, each turn one or two short "
        f"spoken sentences by that speaker clearly expressing the given emotion:\n{order}\n\n"
        "Keep every speaker and emotion exactly as listed."
    )
    system = ("You write realistic conversations between the people described. Answer only with a JSON object "
              '{"turns": [{"speaker": ..., "utterance": ..., "emotion": ...}, ...]}.')
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
