"""UserState: the window, dedupe, bought items, sessions and features."""

from __future__ import annotations

import pytest

from schemas import ClickEvent, ViewEvent
from streams.state import StateLimits, UserState

T0 = 1_764_000_000_000
MIN = 60_000
VIEW, CLICK, CART, BUY = 1, 2, 3, 4


@pytest.fixture
def make_state():
    def make(**limits: int) -> UserState:
        return UserState(StateLimits(**limits))

    return make


def feed(state: UserState, codes: list[int], start: int = T0, step: int = MIN,
         prefix: str = "e") -> None:
    for n, code in enumerate(codes):
        assert state.apply(f"{prefix}{n}", str(100 + n), code, start + n * step, 1000 + n)


def test_window_keeps_the_last_n_and_evicts_the_oldest(make_state):
    state = make_state(window_size=5)
    feed(state, [VIEW] * 7)
    assert [i.item_id for i in state.window] == ["102", "103", "104", "105", "106"]
    assert state.events_total == 7


def test_window_entry_holds_item_code_ts_and_dwell(make_state):
    state = make_state()
    state.apply("e1", "sku-9", CART, T0, 2500)
    (entry,) = state.window
    assert (entry.item_id, entry.code, entry.ts, entry.dwell_ms) == ("sku-9", CART, T0, 2500)


def test_late_event_is_slotted_in_by_time(make_state):
    state = make_state()
    state.apply("a", "1", VIEW, T0, 0)
    state.apply("c", "3", VIEW, T0 + 2 * MIN, 0)
    state.apply("b", "2", CLICK, T0 + MIN, 0)
    assert [i.item_id for i in state.window] == ["1", "2", "3"]
    assert state.last_ts == T0 + 2 * MIN


def test_late_event_older_than_a_full_window_is_not_kept(make_state):
    state = make_state(window_size=3)
    feed(state, [VIEW] * 3, start=T0 + MIN)
    state.apply("old", "999", VIEW, T0, 0)
    assert "999" not in [i.item_id for i in state.window]
    assert len(state.window) == 3


def test_repeated_event_id_is_a_no_op_that_says_so(make_state):
    state = make_state()
    assert state.apply("e1", "1", VIEW, T0, 0) is True
    assert state.apply("e1", "1", VIEW, T0, 0) is False
    assert state.apply("e1", "2", BUY, T0 + MIN, 0) is False  # same id, other content
    assert len(state.window) == 1 and state.events_total == 1 and state.bought == []


def test_dedupe_memory_is_bounded_and_forgets_the_oldest(make_state):
    state = make_state(dedupe_memory=3)
    feed(state, [VIEW] * 4)  # e0..e3: e0 is forgotten
    assert len(state.seen) == 3
    assert not state.has_seen("e0") and state.has_seen("e1") and state.has_seen("e3")
    assert state.apply("e0", "100", VIEW, T0, 0) is True


def test_purchases_are_remembered_bounded_and_without_repeats(make_state):
    state = make_state(bought_memory=2)
    state.apply("p1", "a", BUY, T0, 0)
    state.apply("p2", "b", BUY, T0 + 1, 0)
    state.apply("p3", "a", BUY, T0 + 2, 0)  # bought again: moves to most recent
    assert state.bought == ["b", "a"]
    state.apply("p4", "c", BUY, T0 + 3, 0)
    assert state.bought == ["a", "c"]
    state.apply("v", "d", CART, T0 + 4, 0)
    assert state.bought == ["a", "c"]


def test_new_session_after_the_idle_gap(make_state):
    idle = 30 * MIN
    state = make_state(session_idle_ms=idle)
    state.apply("a", "1", VIEW, T0, 0)
    state.apply("b", "1", VIEW, T0 + idle - 1, 0)  # just under: same session
    assert (state.session_count, state.session_start_ms, state.session_events) == (1, T0, 2)
    state.apply("c", "1", VIEW, T0 + 2 * idle - 1, 0)  # exactly idle after the last one
    assert state.session_count == 2
    assert state.session_start_ms == T0 + 2 * idle - 1 and state.session_events == 1


def test_a_late_event_never_opens_a_past_session(make_state):
    state = make_state()
    state.apply("a", "1", VIEW, T0, 0)
    state.apply("b", "1", VIEW, T0 + 120 * MIN, 0)
    state.apply("late", "1", VIEW, T0 + 60 * MIN, 0)
    assert state.session_count == 2 and state.session_events == 1


def test_feature_counts_and_rates_over_the_window(make_state):
    state = make_state(window_size=10)
    # 12 events: the first two (purchases) leave the window.
    feed(state, [BUY, BUY] + [VIEW] * 4 + [CLICK] * 2 + [CART] * 3 + [BUY])
    f = state.features(now_ms=T0 + 11 * MIN + 5000)
    assert (f.views, f.clicks, f.add_to_carts, f.purchases) == (4, 2, 3, 1)
    assert f.click_through == pytest.approx(0.5)
    assert f.cart_conversion == pytest.approx(0.75)
    assert f.purchase_conversion == pytest.approx(0.25)
    assert f.ms_since_last == 5000


def test_rates_are_undefined_without_views(make_state):
    state = make_state()
    state.apply("c", "1", CLICK, T0, 0)
    f = state.features(now_ms=T0)
    assert f.clicks == 1 and f.click_through is None and f.cart_conversion is None


def test_time_since_last_before_any_event_and_with_a_clock_behind(make_state):
    state = make_state()
    assert state.features(now_ms=T0).ms_since_last is None
    state.apply("a", "1", VIEW, T0, 0)
    assert state.features(now_ms=T0 - 10).ms_since_last == 0


def test_apply_event_maps_views_and_click_actions_to_codes(make_state):
    state = make_state()
    view = ViewEvent(event_id="v", user_id="u", item_id="1", ts=T0, dwell_ms=700)
    click = ClickEvent(event_id="c", user_id="u", item_id="2", ts=T0 + 1, action="purchase")
    assert state.apply_event(view) and state.apply_event(click)
    assert [(i.code, i.dwell_ms) for i in state.window] == [(VIEW, 700), (BUY, 0)]
    assert state.bought == ["2"]


def test_unknown_event_code_is_refused(make_state):
    with pytest.raises(ValueError, match="code"):
        make_state().apply("e", "1", 9, T0, 0)


def test_summary_is_the_json_view_of_the_state(make_state):
    import orjson

    state = make_state(session_idle_ms=30 * MIN)
    state.apply("a", "7", VIEW, T0, 1200)
    state.apply("b", "7", BUY, T0 + MIN, 0)
    summary = orjson.loads(orjson.dumps(state.summary(now_ms=T0 + 2 * MIN)))
    assert summary["window"] == [
        {"item_id": "7", "event": "view", "ts": T0, "dwell_ms": 1200},
        {"item_id": "7", "event": "purchase", "ts": T0 + MIN, "dwell_ms": 0},
    ]
    assert summary["features"]["purchases"] == 1 and summary["features"]["views"] == 1
    assert summary["session"] == {"count": 1, "current_start_ts": T0, "current_events": 2,
                                  "active": True}
    assert summary["bought"] == ["7"] and summary["events_total"] == 2
    assert state.summary(now_ms=T0 + 40 * MIN)["session"]["active"] is False
