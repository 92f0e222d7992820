"""User text (class names, file names, paths, messages that quote input) shown as text, never as markup.

Streamlit renders ``st.markdown``/``st.caption``/``st.error``/``st.success`` bodies as markdown and ``st.html`` as
HTML (its sanitiser keeps ``<style>``, ``<a>`` and ``<form>``); plotly renders a subset of HTML in legends, titles
and hover text. Every string a user controls passes through one of these before it reaches such a place."""

from __future__ import annotations

import html
import re

import streamlit as st  # noqa: F401  (this module is part of the Streamlit adapter)

# backslash, code, emphasis (``_`` only where it can open or close: not inside a word like mnist_cnn), links and
# images, headings, tables, strikethrough, maths, HTML tags and entities, e-mail autolinks
_MD_SPECIAL = re.compile(r"([\\`*\[\]#|<>~$&!@]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
# line breaks and other control characters: one space (a name on several lines would start markdown blocks —
# headings, lists, code — of its own)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def md_escape(text) -> str:
    """``text`` for a markdown body, shown literally: the characters that make links, images, emphasis, code,
    HTML tags and entities, tables, maths and Streamlit's ``:colour[…]`` directives are backslash-escaped, bare
    URLs (``https://…``, ``www.…``) are broken so GitHub-flavoured markdown does not turn them into links, and line
    breaks become spaces. Plain words, numbers and ``--flags`` read as before."""
    out = _MD_SPECIAL.sub(r"\\\1", _CONTROL.sub(" ", str(text)))
    return out.replace("://", ":\\/\\/").replace("www.", "www\\.").replace("WWW.", "WWW\\.")


def html_escape(text) -> str:
    """``text`` for an HTML body or attribute (``st.html``). Plotly text is escaped where figures are built
    (``hashviz.viz.figures._text``: plotly shows ``&quot;`` literally, so quotes stay there)."""
    return html.escape(str(text), quote=True)
