"""Issue 26: a run's resume state follows the slots in flight, not --n: finished ids kept as a compact `IdSet`, the
journal read a line at a time, the slots still to do produced lazily. Memory is measured with tracemalloc (Python's
own allocations), not with time."""
import tracemalloc

import orjson
import pytest

from common.idset import PAGE, IdSet
from common.jsonl import recover
from llm.engine.resume import finished, resume
from model.emotions import resolve_emotions
from model.profile import load_profile


def peak(work) -> int:
    """Bytes Python allocated at most while `work()` ran, above what was allocated before."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_an_idset_is_a_set_of_ids_whose_full_pages_cost_nothing():
    ids = IdSet([3, PAGE + 1, 3, 2**32 - 1])
    assert len(ids) == 3 and 3 in ids and PAGE + 1 in ids and 2**32 - 1 in ids and 4 not in ids
    assert list(ids.missing(range(0, 6))) == [0, 1, 2, 4, 5]
    for i in range(2 * PAGE, 3 * PAGE):
        ids.add(i)
    assert len(ids) == 3 + PAGE and list(ids.missing(range(2 * PAGE - 2, 3 * PAGE + 2))) == [
        2 * PAGE - 2, 2 * PAGE - 1, 3 * PAGE, 3 * PAGE + 1]
    full = peak(lambda: IdSet(range(5 * PAGE)))  # 327,680 ids
    assert full < 300_000  # a Python set of them: about 16 MB


def test_finished_reads_a_journal_without_keeping_its_results(tmp_path):
    # before: every finished result was held in a dict (about 1 KB each), and the file read whole
    path = tmp_path / "out.jsonl"
    rows = [{"id": i, "profile": "jp", "domain": "sns", "seed": 0, "emotion": "joy", "method": "personagen",
             "usage": {"prompt_tokens": 3, "completion_tokens": 2}, "persona_draws": 2, "text": "x" * 400}
            for i in range(0, 60_000, 2)]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows) + b'{"id": 9')  # and a torn tail
    used = peak(lambda: finished(path, range(60_000)))
    assert used < 2_000_000  # the results: 30,000 x about 1 KB
    done = finished(path, range(60_000))
    assert len(done) == 30_000 and 2 in done and 3 not in done and path.read_bytes().endswith(b"}\n")
    assert set(recover(path)) == {i for i in range(60_000) if i in done}
    assert (done.methods, done.totals.prompt_tokens, done.totals.persona_draws) == ({"personagen"}, 90_000, 60_000)


@pytest.mark.timeout(300)
def test_resuming_a_huge_run_holds_no_list_of_its_slots(tmp_path):
    # before: the ids still to do were listed first (5 million: about 180 MB; 10**8: 4 GB before any request)
    profile = load_profile("jp", "sns")
    emotions = resolve_emotions()
    firsts = []

    def start(n):
        todo, _ = resume(profile, range(n), 0, emotions, finished(tmp_path / "none.jsonl"), tmp_path)
        firsts.append([next(todo)["id"] for _ in range(3)])

    start(10)  # the sampler compiled
    small, huge = peak(lambda: start(100_000)), peak(lambda: start(5_000_000))  # a chunk of records each
    assert huge < small + 1_000_000
    assert firsts == [[0, 1, 2]] * 3
