"""Playground: a 2- or 3-bit toy where the embedding space is the picture — rotate it by hand, then watch the
learned rotations find the same place."""

import streamlit as st

from hashviz.ui import page, playground

page.intro("Playground", (
    "With 2 or 3 bits the embedding space is the picture: each point's code is the corner of the square (or "
    "cube) it snaps to, and a rotation decides which corner that is. Turn the toy by hand until the error is "
    "lowest, then watch HQ, ITQ and random search find a rotation on their own — no run needs to be prepared."))

spec = playground.settings()

st.subheader("Rotate by hand")
playground.by_hand(spec)

st.subheader("Rotation learned")
playground.learned_view(spec)

playground.explain()
