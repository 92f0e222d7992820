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


def md_escape(text) -> str:
    """``text`` for a markdown body, shown literally: the characters that make links, images, emphasis, code,
    HTML tags and entities, tables, maths and Streamlit's ``:colour[…]`` directives are backslash-escaped, and bare
    URLs (``https://…``, ``www.…``) are broken so GitHub-flavoured markdown does not turn them into links. Plain
    words, numbers and ``--flags`` read as before."""
    out = _MD_SPECIAL.sub(r"\\\1", str(text))
    return out.replace("://", ":\\/\\/").replace("www.", "www\\.").replace("WWW.", "WWW\\.")


def html_escape(text) -> str:
    """``text`` for an HTML body or attribute (also what plotly's text fields need)."""
    return html.escape(str(text), quote=True)
