"""Streamlit's floor for a first chart: the lightest page that draws one plotly chart (a three-point scatter).

bench_page.py times the app's first chart against this page's, in the same browser and server set-up.
"""

import plotly.graph_objects as go
import streamlit as st

st.plotly_chart(go.Figure(go.Scatter(x=[0, 1, 2], y=[0, 1, 0])))
