"""The Streamlit page's pieces: the only part of bnviz that imports streamlit."""
