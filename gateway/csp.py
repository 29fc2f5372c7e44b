"""Content-Security-Policy for the HTML pages, built once from each page's own text.

Every inline ``<script>`` and ``<style>`` element of a page is allowed by its
SHA-256 hash, never by ``'unsafe-inline'``, so a page gets exactly what it holds
and an injected element runs nowhere. What libraries do at run time decides the
rest, per page (found by loading each page in Chromium with zero console errors):

- GraphiQL's stylesheet carries its fonts as ``data:`` URIs (``font-src data:``; the
  34 console errors of issue 14 were these fonts refused by ``default-src``), and
  GraphiQL and CodeMirror add ``<style>`` elements at run time, which no hash can
  name: its ``style-src-elem`` allows ``'unsafe-inline'`` (styles, not scripts);
- Swagger UI draws its icons as ``data:`` SVG images, and its logo is an SVG with
  a constant ``<style>`` that React adds (``createElement("style", null, "...")``):
  ``react_style_hashes`` finds such constants in the page's scripts to hash them;
- the sign-in pages are self-contained: one hashed ``<style>``, nothing else.

``style-src-attr`` covers ``style="..."`` attributes of the markup (CSP 3; attributes
set from script through the CSSOM are never blocked).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re

_INLINE = re.compile(r"<(script|style)\b([^>]*)>(.*?)</\1\s*>", re.DOTALL | re.IGNORECASE)
_STYLE_ATTR = re.compile(r"""\sstyle\s*=\s*["']""", re.IGNORECASE)


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def inline_hashes(html: str) -> tuple[list[str], list[str]]:
    """CSP hash sources of the inline scripts and the inline styles of ``html``."""
    scripts: list[str] = []
    styles: list[str] = []
    for match in _INLINE.finditer(html):
        tag, attributes, body = match.group(1).lower(), match.group(2), match.group(3)
        if tag == "script":
            if re.search(r"\ssrc\s*=", attributes, re.IGNORECASE) is None:
                scripts.append(_hash(body))
        else:
            styles.append(_hash(body))
    return scripts, styles


_REACT_STYLE = re.compile(r'createElement\("style",null,"((?:[^"\\]|\\.)*)"\)')


def react_style_hashes(javascript: str) -> list[str]:
    """Hash sources of the constant ``<style>`` elements a React bundle creates."""
    found: list[str] = []
    for match in _REACT_STYLE.finditer(javascript):
        text = match.group(1)
        if "\\" in text:  # an escape: decode it as JSON does (a JS string literal here)
            text = json.loads(f'"{text}"')
        source = _hash(text)
        if source not in found:
            found.append(source)
    return found


def page_policy(
    html: str,
    *,
    connect: str = "'self'",
    runtime_styles: bool = False,
    style_attributes: bool | None = None,
    form_action: str | None = "'self'",
    extra_styles: list[str] | None = None,
) -> str:
    """The CSP of one page (see module doc). ``runtime_styles``: the page's scripts add
    ``<style>`` elements; ``style_attributes`` (default: found in the markup);
    ``form_action`` None: forms may go anywhere (browsers apply it to redirects too)."""
    scripts, styles = inline_hashes(html)
    styles.extend(extra_styles or ())
    if style_attributes is None:
        style_attributes = _STYLE_ATTR.search(html) is not None
    elem = ["'self'", "'unsafe-inline'"] if runtime_styles else ["'self'", *styles]
    parts = [
        "default-src 'none'",
        "script-src " + " ".join(["'self'", *scripts]),
        "style-src-elem " + " ".join(elem),
        "style-src-attr " + ("'unsafe-inline'" if style_attributes else "'none'"),
        # Browsers without the CSP 3 split directives fall back to style-src.
        "style-src 'self' 'unsafe-inline'"
        if runtime_styles or style_attributes
        else "style-src " + " ".join(["'self'", *styles]),
        "img-src 'self' data:",
        "font-src 'self' data:",
        f"connect-src {connect}",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
    if form_action is not None:
        parts.append(f"form-action {form_action}")
    return "; ".join(parts)


def page_headers(policy: str, cache_control: str = "no-cache") -> dict[str, str]:
    """The headers of an HTML page (the edge adds the rest of the security headers)."""
    return {"Content-Security-Policy": policy, "Cache-Control": cache_control}
