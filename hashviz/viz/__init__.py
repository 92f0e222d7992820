"""Views: 2-D projections (project.py), plotly figures (figures.py) and image grids (images.py).

UI-free: nothing here imports Streamlit; umap-learn is imported lazily when a UMAP is computed."""
