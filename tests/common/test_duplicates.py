"""Issue 23: what counts as a duplicate (common.normalise, common.duplicates), by hand-made texts."""
import pytest

from common.duplicates import THRESHOLD, DedupSpec, ExactIndex, NearIndex, index_for, shingles
from common.normalise import normalise

LONG = "We finally moved into the new flat by the sea and it feels wonderful"


def test_normal_form_is_nfkc_casefolded_and_whitespace_collapsed():
    assert normalise("  Ｈｅｌｌｏ\u3000\tWORLD \n") == "hello world"
    assert normalise("Straße") == normalise("STRASSE") == "strasse"
    assert normalise("ｶﾞｷﾞ") == "ガギ"  # half-width kana composed by NFKC


@pytest.mark.parametrize("text, spec", [("exact", DedupSpec("exact")), ("near", DedupSpec("near", THRESHOLD)),
                                        ("near:0.85", DedupSpec("near", 0.85)), ("near:1", DedupSpec("near", 1.0))])
def test_specs_read_and_write_back(text, spec):
    assert DedupSpec.parse(text) == spec
    assert DedupSpec.parse(str(spec)) == spec


@pytest.mark.parametrize("text, words", [("near:2", "(0, 1]"), ("near:0", "(0, 1]"), ("near:-0.1", "(0, 1]"),
                                         ("near:nan", "(0, 1]"), ("near:x", "'x'"), ("near:", "(0, 1]"),
                                         ("exact:0.5", "expected exact, near"), ("minhash", "expected exact, near"),
                                         ("", "expected exact, near")])
def test_bad_specs_are_refused_with_the_reason(text, words):
    with pytest.raises(ValueError) as exc:
        DedupSpec.parse(text)
    assert words in str(exc.value)


def test_exact_index_finds_normal_form_copies_within_their_scope():
    index = ExactIndex()
    assert index.offer(3, "I won!") is None
    assert index.offer(5, "  i WON! ") == 3 and index.find("I  won!") == 3
    assert index.offer(7, "I won!", scope="joy") is None  # another scope
    assert index.offer(9, "I won!!") is None  # another text
    assert index.find("I won") is None


def test_near_index_finds_near_copies_only_and_keeps_the_first_key():
    index = NearIndex()
    assert index.offer(1, LONG) is None
    assert index.offer(2, LONG.upper() + " today") == 1  # one word added: Jaccard about 0.9
    assert index.offer(3, "The meeting ran late and the printer jammed twice before noon") is None
    assert index.find(LONG.replace("wonderful", "strange")) == 1  # one word changed near the end
    assert index.find(LONG, scope="sadness") is None
    assert index.find("We finally moved") is None  # a third of it: Jaccard far below 0.7
    strict = NearIndex(1.0)
    strict.offer(1, LONG)
    assert strict.find(LONG + " today") is None and strict.find(LONG.lower()) == 1


def test_near_answers_depend_only_on_the_offers():
    texts = [LONG, LONG + "!", "Another day at the office, nothing to report", LONG + " today", "Another day"]
    answers = [[index.offer(i, t, scope) for i, t in enumerate(texts) for scope in ("a", "")]
               for index in (index_for(DedupSpec("near", THRESHOLD)), index_for(DedupSpec("near", THRESHOLD)))]
    assert answers[0] == answers[1] == [None, None, 0, 0, None, None, 0, 0, None, None]


def test_shingles_of_short_and_japanese_texts():
    assert shingles("Hi") == [b"hi"] and sorted(shingles("abcdefa")) == [b"abcde", b"bcdef", b"cdefa"]
    assert len(shingles("今日はとても楽しかった")) == len("今日はとても楽しかった") - 4
