"""Teaching material that runs on its own small data: the rotation playground's toy (:mod:`hashviz.teach.toy`).

UI-free like the rest of the library (figures for it are in :mod:`hashviz.viz.toy`, the Streamlit side in
``hashviz/ui/playground.py``)."""
