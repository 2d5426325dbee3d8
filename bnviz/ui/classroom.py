"""Classroom: the lesson banner (step, what to look at, question, answer on demand) and presenter mode."""

from __future__ import annotations

import streamlit as st

from bnviz.present import claims, lessons

from . import lrsweep
from .runtime import shared
from .state import close_lesson, follow_live, open_step, reveal

# Less empty space above the page, so a 1280x800 projector shows controls and a full chart together: the top bar
# shows the heading under it and lets clicks through except on its own buttons; an element that only holds a
# style sheet takes no room (no gap above it either).
# The panel bar's buttons are narrower than Streamlit's, so the nine panels fit one row of a 1280-px window.
PAGE_CSS = """<style>
.block-container {padding-top: 2.2rem; padding-bottom: 1rem}
[data-testid=stHeader] {background: transparent; pointer-events: none}
[data-testid=stHeader] * {pointer-events: auto}
[data-testid=stElementContainer]:has([data-testid=stMarkdownContainer] > style:only-child) {display: none}
.st-key-panel button {padding-left: 0.6rem; padding-right: 0.6rem}
</style>"""
PRESENTER_CSS = """<style>
[data-testid=stSidebar], [data-testid=stSidebarCollapsedControl] {display: none}
.block-container {max-width: 100%; padding-left: 2rem; padding-right: 2rem}
[data-testid=stMarkdownContainer] p, [data-testid=stText] {font-size: 1.2rem}
[data-testid=stSelectbox] input, [data-testid=stMultiSelect] input, [data-testid=stMultiSelectTagsContainer] span
    {font-size: 1.2rem}
</style>"""
# A lesson leads the page: its banner starts beside the top bar's menu rather than below the whole bar.
LESSON_CSS = """<style>
.block-container {padding-top: 1rem}
.st-key-lesson {padding-top: 0.5rem; padding-bottom: 0.5rem}
.st-key-lesson [data-testid=stAlertContentSuccess] {margin: -0.4rem 0}
</style>"""
# In presenter mode the page is as wide as the window: keep the banner's right edge clear of the menu.
LESSON_PRESENTER_CSS = "<style>.block-container {padding-right: 3.5rem}</style>"


def styles(present: bool | None) -> None:
    """The page's own style sheets: presenter mode's, and a lesson's when a lesson is open."""
    st.markdown(PAGE_CSS, unsafe_allow_html=True)  # our own CSS, no user text
    if present:
        st.markdown(PRESENTER_CSS, unsafe_allow_html=True)
    if lesson_open():
        st.markdown(LESSON_CSS, unsafe_allow_html=True)
        if present:
            st.markdown(LESSON_PRESENTER_CSS, unsafe_allow_html=True)


def share_link() -> str:
    """The full link of the current state (address without query + the synced query string)."""
    from urllib.parse import urlencode

    base = st.context.url or ""
    query = urlencode({k: st.query_params.get(k) for k in st.query_params})
    return f"{base}?{query}" if query else base


def sidebar(lessons_shown: bool = True) -> None:
    """The classroom controls: share link, the walkthrough from any step, presenter mode for a projector.
    Without ``lessons_shown`` (a followed run: no preset, so no link or lesson reproduces it) presenter mode
    only."""
    with st.sidebar:
        if lessons_shown:  # below the settings; a followed run has none, so nothing to set it apart from
            st.divider()
        st.markdown("**Classroom**")
        if not lessons_shown:
            st.toggle("Presenter mode", key="present", help="Hides the controls and enlarges the text and the "
                      "charts for a projector")
            return
        # In a popover: the code block's highlighter (1.5 MB of JavaScript) loads only when it is opened.
        with st.popover("Share this run", icon=":material/link:", width="stretch"):
            st.caption("The link reproduces this run exactly (copy icon at the right):")
            st.code(share_link(), language=None, wrap_lines=True)
        options = [0, *[s.number for s in lessons.STEPS]]
        current = st.session_state.get("lesson") or 0
        st.session_state["lesson_pick"] = current if current in options else 0
        # A radio, not a select: the steps' titles wrap in the narrow sidebar instead of being cut.
        st.radio("Guided lesson", options, key="lesson_pick",
                 format_func=lambda n: "none" if n == 0 else f"{n}. {lessons.step(n).claim} {lessons.step(n).title}",
                 on_change=lambda: open_step(st.session_state["lesson_pick"]) if st.session_state["lesson_pick"]
                 else close_lesson(), help="A walkthrough of the claims C1-C10; each step has its own link")
        st.toggle("Presenter mode", key="present", help="Hides the controls and enlarges the text and the charts "
                  "for a projector (the link keeps it: present=1)")


# The chart a lesson step asks about (lessons.Step.chart) is drawn right under the banner, at LESSON_HEIGHT px,
# so that a 1280x800 projector shows the question and the chart together.
LESSON_HEIGHT = 340


def focus() -> str | None:
    """The chart key the open lesson step asks about, or None without a lesson."""
    try:
        return lessons.step(int(st.session_state.get("lesson") or 0)).chart or None
    except (ValueError, TypeError):
        return None


def sized(key: str) -> dict:
    """Keyword arguments for the builder of chart ``key``: the lesson height when the lesson asks about it."""
    return {"height": LESSON_HEIGHT} if focus() == key else {}


def lesson_open() -> bool:
    """A lesson step is open: the page then leads with its banner and the step's chart."""
    return bool(st.session_state.get("lesson"))


def banner(snaps, cfg) -> None:
    """The current lesson step above its chart: heading and Back/Next/Close on one line, what to look at, the
    question with Reveal beside it; once revealed, the answer in place of what to look at.

    ``snaps``: the snapshots up to the step the charts show. The answer reads exactly these, and Reveal pins
    them (:func:`state.reveal`) so that the answer and the charts hold still while training goes on.
    """
    number = st.session_state.get("lesson")
    if not number:
        return
    try:
        step = lessons.step(int(number))
    except ValueError as exc:
        st.warning(str(exc))
        st.session_state["lesson"] = None
        return
    total = len(lessons.STEPS)
    revealed = bool(st.session_state.get("reveal"))
    with st.container(border=True, key="lesson", gap="xsmall"):
        # The buttons take the width their labels need and wrap below the heading when the page is narrow.
        with st.container(horizontal=True, vertical_alignment="center", key="lesson_head"):
            with st.container(width="stretch"):
                st.markdown(f"**Lesson {step.number} of {total} · {step.claim} · {step.title}**")
            st.button("Back", key="lesson_prev", icon=":material/arrow_back:", disabled=step.number <= 1,
                      on_click=open_step, args=(step.number - 1,), width="content")
            st.button("Next", key="lesson_next", icon=":material/arrow_forward:", disabled=step.number >= total,
                      on_click=open_step, args=(step.number + 1,), width="content")
            st.button("Close", key="lesson_close", icon=":material/close:", on_click=close_lesson,
                      width="content")
        if not revealed:
            st.text(f"Look at: {step.look_at}")
        with st.container(horizontal=True, vertical_alignment="center", key="lesson_question"):
            with st.container(width="stretch"):
                st.markdown(f"**Question:** {step.question}")
            # No help tooltips here: a button with one is drawn twice in Streamlit 1.67 (once hidden).
            if not revealed:
                st.button("Reveal the answer", key="reveal_btn", icon=":material/visibility:", on_click=_reveal,
                          args=(step, snaps, cfg), width="content")
            elif not st.session_state.get("_follow", True):
                st.button("Follow training", key="lesson_live", icon=":material/play_arrow:", on_click=follow_live,
                          width="content")
            else:
                st.button("Hold this step", key="lesson_hold", icon=":material/pause:", on_click=reveal,
                          args=(snaps,), width="content")
        if revealed:
            st.success(shared(_answer, snaps, step, cfg, lrsweep.points(cfg)), icon=":material/lightbulb:")


def _answer(snaps, step, cfg, lr_points=()) -> str:
    """The step's answer from ``snaps`` (first: the snapshots anchor the shared result, see runtime.shared) and the
    stored points of the network's learning-rate sweep."""
    return lessons.answer(step, snaps, cfg, lr_points)


def _reveal(step, snaps, cfg) -> None:
    """Reveal callback: the answer, holding the shown step when the run measures the claim there. Too early
    (too few snapshots) the view keeps following training, so that the answer comes as soon as it can."""
    verdict = next((v for v in shared(claims.evidence, snaps, cfg, lrsweep.points(cfg)) if v.claim == step.claim),
                   None)
    reveal(snaps if verdict is not None and verdict.verdict != "not measured" else ())
