"""Match station references in exports to the station register, whatever their form.

A bureau's export names a station by code (``450102001``), short name (``城关``, ``城关所``),
name (``城关派出所``) or full unit name with the city bureau and branch in front
(``某市公安局某分局城关派出所``, ``某县公安局城关派出所``, ``交警大队…``). References are
compared after NFKC normalisation (full-width letters/digits/brackets), without spaces and
case-insensitively, in tiers; the first tier with any candidate decides:

1. the code (as written, then normalised);
2. the full name as written in the register (normalised);
3. the unit name without its bureau/branch prefix (everything up to the last 公安局/分局/县局/
   区局/市局/大队/支队/… is dropped);
4. the core name: tier 3 without a trailing 派出所/所/警务站;
5. the core name with the station's county or city in front (``某县城关派出所``,
   ``某市某县城关所``), when the register has those columns.

One candidate is a match; several are *ambiguous* (quarantined with the candidates in the
detail); none is *unmatched*. Matching runs on the distinct values of a column only, so a
10-million-row file costs as many look-ups as it has distinct station spellings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from evalkit.ingest.sql import frame_to_temp_table
from evalkit.ingest.vocab import fold

# Unit prefixes of a full name: the station's own name follows the last of these markers.
_PREFIX_MARKERS = ("公安局", "公安分局", "分局", "县局", "区局", "市局", "公安处", "交警支队", "交警大队",
                   "支队", "大队")
_PREFIX_RE = re.compile("^.*(?:" + "|".join(map(re.escape, _PREFIX_MARKERS)) + ")")
_SUFFIX_RE = re.compile("(?:派出所|警务站|所)$")
_MAX_CANDIDATES = 5


def norm(x: object) -> str:
    """NFKC, no whitespace, upper case: ``"ＡＢ 城关　派出所"`` → ``"AB城关派出所"``."""
    return fold(x).upper()


def tail(x: str) -> str:
    """A normalised name without its bureau/branch prefix (``某市公安局某分局城关派出所`` → ``城关派出所``)."""
    t = _PREFIX_RE.sub("", x)
    return t or x


def core(x: str) -> str:
    """:func:`tail` without the trailing 派出所/所/警务站 (``城关派出所`` → ``城关``)."""
    t = tail(x)
    c = _SUFFIX_RE.sub("", t)
    return c or t


@dataclass(frozen=True)
class Match:
    station_id: str | None  # None: ambiguous or unmatched
    candidates: tuple[str, ...] = ()  # ambiguous: the station ids that fit (at most a few)

    @property
    def status(self) -> str:
        if self.station_id is not None:
            return "matched"
        return "ambiguous" if self.candidates else "unmatched"


class StationMatcher:
    """Index of the register: ``StationMatcher(rows)(reference) -> Match``."""

    def __init__(self, rows: list[tuple]):
        """``rows``: ``(station_id, name)`` or ``(station_id, name, county, city)`` tuples."""
        self.n = len(rows)
        self.tiers: list[dict[str, set[str]]] = [{}, {}, {}, {}, {}, {}]
        ids = self.tiers[0]
        for sid, *_ in rows:
            ids.setdefault(str(sid), set()).add(sid)
        for sid, *_ in rows:
            self.tiers[1].setdefault(norm(sid), set()).add(sid)
        for sid, name, *place in rows:
            if not name:
                continue
            n = norm(name)
            self.tiers[2].setdefault(n, set()).add(sid)
            self.tiers[3].setdefault(tail(n), set()).add(sid)
            c = core(n)
            self.tiers[4].setdefault(c, set()).add(sid)
            county, city = (norm(x) if x else "" for x in (place + [None, None])[:2])
            for prefix in {county, city, city + county} - {""}:
                self.tiers[5].setdefault(prefix + c, set()).add(sid)

    def __call__(self, ref: str) -> Match:
        n = norm(ref)
        c = core(n)
        for tier, key in zip(self.tiers, (str(ref), n, n, tail(n), c, c), strict=True):
            hit = tier.get(key)
            if hit:
                if len(hit) == 1:
                    return Match(next(iter(hit)))
                return Match(None, tuple(sorted(hit))[:_MAX_CANDIDATES])
        return Match(None)


def matcher_from_register(con) -> StationMatcher:
    """The matcher for the live station register of the warehouse."""
    return StationMatcher(con.execute("SELECT station_id, name, county, city FROM stations").fetchall())


def station_map_table(con, raw_table: str, column: str, name: str = "_ek_map_station") -> int:
    """Temp table ``name(v, m, cands)`` over the distinct values of ``raw_table.column``.

    ``m`` is the matched station id (NULL if none), ``cands`` the ambiguous candidates joined
    by ``/`` (NULL if unmatched or matched). Returns the size of the register (0 = empty).
    """
    matcher = matcher_from_register(con)
    if matcher.n == 0:
        return 0
    vals = [r[0] for r in con.execute(
        f"SELECT DISTINCT {column} FROM {raw_table} WHERE {column} IS NOT NULL").fetchall()]
    out = [matcher(v) for v in vals]
    frame = pd.DataFrame({
        "v": pd.Series(vals, dtype=object),
        "m": pd.Series([m.station_id for m in out], dtype=object),
        "cands": pd.Series(["/".join(m.candidates) if m.candidates else None for m in out], dtype=object),
    })
    frame_to_temp_table(con, name, frame,
                        "CAST(v AS VARCHAR) AS v, CAST(m AS VARCHAR) AS m, CAST(cands AS VARCHAR) AS cands")
    return matcher.n


__all__ = ["Match", "StationMatcher", "core", "matcher_from_register", "norm", "station_map_table", "tail"]
