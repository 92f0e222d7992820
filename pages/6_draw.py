"""Your own image: draw a digit (or bring an image) and see its codes and nearest database images."""

import streamlit as st

from hashviz.ui import draw, page, sidebar
from hashviz.ui.errors import attempt

page.intro("Your own image", (
    "Draw a digit with the mouse (or upload a picture) and follow it through the run's own model: it is prepared "
    "the way the training images were (MNIST: grey, white on black, cropped, scaled to 20×20 and centred by its "
    "centre of mass in 28×28), then the backbone, the hashing head and each quantizer turn it into a code. Its "
    "code for every bit length and quantizer, the nearest database images in Hamming distance with the class "
    "most of them share, and its place on the codes map show whether the codes really group what you drew with "
    "its own kind."))

ctx = sidebar.context()
page.need_run(ctx)
model = draw.need_model(ctx.key)

left, right = st.columns([3, 2])
with left:
    data, name = draw.image_input(model.recipe)
with right:
    k = draw.top_k()
if data is None:
    st.stop()
inputs = draw.run_inputs(ctx.run)
result = attempt(draw.run_query, ctx.key, data, name, k, inputs, what="encoding your image")
with right:
    draw.seen(result, model.recipe)

class_names = draw.class_names(ctx.key, ctx.n_bits)
draw.results(ctx.key, result, class_names)

st.subheader(f"Where it falls on the {ctx.n_bits}-bit codes map")
draw.query_map(ctx.key, ctx.n_bits, result, inputs)
