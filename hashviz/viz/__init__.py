"""Views: 2-D projections (project.py: the maths and the disk cache; layout_jobs.py: computed in the background by
the worker process, worker.py), plotly figures (figures.py) and image grids (images.py).

UI-free: nothing here imports Streamlit; umap-learn is imported lazily when a UMAP is computed."""
