"""Classroom: the lesson banner (step, what to look at, question, answer on demand) and presenter mode."""

from __future__ import annotations

import streamlit as st

from bnviz.present import lessons
from .state import close_lesson, open_step

PRESENTER_CSS = """<style>
[data-testid=stSidebar], [data-testid=stSidebarCollapsedControl] {display: none}
.block-container {max-width: 100%; padding-left: 2rem; padding-right: 2rem}
[data-testid=stMarkdownContainer] p, [data-testid=stText] {font-size: 1.2rem}
[data-testid=stSelectbox] input, [data-testid=stMultiSelect] input, [data-testid=stMultiSelectTagsContainer] span
    {font-size: 1.2rem}
</style>"""


def share_link() -> str:
    """The full link of the current state (address without query + the synced query string)."""
    from urllib.parse import urlencode

    base = st.context.url or ""
    query = urlencode({k: st.query_params.get(k) for k in st.query_params})
    return f"{base}?{query}" if query else base


def sidebar() -> None:
    """The classroom controls: share link, the walkthrough from any step, presenter mode for a projector."""
    with st.sidebar:
        st.divider()
        st.markdown("**Classroom**")
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
                 else close_lesson(), help="A walkthrough of the claims C1-C8; each step has its own link")
        st.toggle("Presenter mode", key="present", help="Hides the controls and enlarges the text and the charts "
                  "for a projector (the link keeps it: present=1)")


def banner(snaps, cfg) -> None:
    """The current lesson step above the charts: what to look at, the question, the answer on demand."""
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
    with st.container(border=True, key="lesson"):
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
        st.text(f"Look at: {step.look_at}")
        st.markdown(f"**Question:** {step.question}")
        if st.session_state.get("reveal"):
            st.success(lessons.answer(step, snaps, cfg), icon=":material/lightbulb:")
        else:
            st.button("Reveal the answer from this run's numbers", key="reveal_btn", icon=":material/visibility:",
                      on_click=st.session_state.__setitem__, args=("reveal", True))
