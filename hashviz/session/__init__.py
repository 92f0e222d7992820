"""The app's logic without Streamlit: what a browser session works on, unit-tested directly.

- :mod:`hashviz.session.runs` — :class:`~hashviz.session.runs.Workspace`, one hashviz home as the app sees it:
  prepared runs by key, their embeddings, stored quantizers and images, uploads, live-rotation checkpoints;
- :mod:`hashviz.session.jobs` — background preparation and penalty-sweep jobs, and per-session objects;
- :mod:`hashviz.session.live` — a live rotation fit advanced a few steps at a time;
- :mod:`hashviz.session.compare` — scoring rows for the Compare page under a protocol, the same codes under
  every protocol, curves, bit statistics, exports;
- :mod:`hashviz.session.browse` — ranking one query, choosing queries, Hamming neighbours on the maps;
- :mod:`hashviz.session.maps` — the data behind the Codes & embeddings maps;
- :mod:`hashviz.session.penalty` — the Penalty page: stored sweeps of a run's dataset, new sweeps, cell times.

``hashviz/ui/`` is only the Streamlit adapter over these modules; nothing here imports streamlit.
"""
