"""Presentation: pure builders from snapshots to what people read. Views extract series, figures draw them
(plotly), claims judge them (the evidence board, docs/claims.md), lessons and the HTML report tell them.
No Streamlit here: bnviz/ui lays these out on the page.
"""
