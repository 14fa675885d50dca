"""A set of record ids (whole numbers in [0, 2**32)) whose memory follows its gaps, not its size.

Ids are kept in pages of 2**16 bits (8 KiB); a page that holds every one of its ids collapses to a marker. So the
finished ids of a run, a prefix and a ragged frontier of the slots in flight (and the few that failed), cost a
dict entry per 65,536 ids and a page per partly finished stretch: about 13 bytes per million ids, where a Python set
or dict of them costs about 60 MB."""
from __future__ import annotations

from collections.abc import Iterable, Iterator

PAGE_BITS = 16
PAGE = 1 << PAGE_BITS
_FULL = b""  # the marker of a full page (a page is never empty: it is made for its first id)


class IdSet:
    def __init__(self, ids: Iterable[int] = ()):
        self._pages: dict[int, bytearray | bytes] = {}
        self._counts: dict[int, int] = {}  # ids in each page not yet full
        self._len = 0
        for i in ids:
            self.add(i)

    def add(self, i: int) -> None:
        number, bit = i >> PAGE_BITS, i & (PAGE - 1)
        page = self._pages.get(number)
        if page is None:
            page = self._pages[number] = bytearray(PAGE // 8)
        elif page is _FULL:
            return
        mask = 1 << (bit & 7)
        if page[bit >> 3] & mask:
            return
        page[bit >> 3] |= mask
        self._len += 1
        count = self._counts[number] = self._counts.get(number, 0) + 1
        if count == PAGE:
            self._pages[number] = _FULL
            del self._counts[number]

    def __contains__(self, i: int) -> bool:
        page = self._pages.get(i >> PAGE_BITS)
        if page is None:
            return False
        bit = i & (PAGE - 1)
        return page is _FULL or bool(page[bit >> 3] & (1 << (bit & 7)))

    def __len__(self) -> int:
        return self._len

    def missing(self, ids: range) -> Iterator[int]:
        """The ids of `ids` (a range with step 1) not in the set, in order; full pages are skipped whole."""
        i = ids.start
        while i < ids.stop:
            number = i >> PAGE_BITS
            page = self._pages.get(number)
            end = min(ids.stop, (number + 1) << PAGE_BITS)
            if page is None:
                yield from range(i, end)
            elif page is not _FULL:
                for j in range(i, end):
                    bit = j & (PAGE - 1)
                    if not page[bit >> 3] & (1 << (bit & 7)):
                        yield j
            i = end
