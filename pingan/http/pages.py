"""The small public pages people open on a phone (a crew's task, a citizen's warning):
one frame, so they look alike. Every value a caller prints into `body` is escaped
first."""

from __future__ import annotations

import html


def mobile_page(title: str, body: str) -> str:
    """A whole page for a phone around `body` (already escaped HTML): our fonts, one
    readable column, thumb-sized buttons, and no script (the CSP allows none inline)."""
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>
body{{font-family:"WenQuanYi Micro Hei","Noto Sans CJK SC",sans-serif;margin:0;padding:16px;
max-width:480px;background:#f6f7f9;color:#1b1f24;font-size:17px;line-height:1.5}}
h1{{font-size:21px;margin:0 0 8px}} .card{{background:#fff;border-radius:10px;padding:14px;
margin:12px 0;box-shadow:0 1px 3px rgba(0,0,0,.12)}} .state{{font-weight:bold;color:#0a6}}
button{{display:block;width:100%;font-size:19px;padding:14px;margin:10px 0;border:0;
border-radius:10px;background:#0a66c2;color:#fff}} button.decline{{background:#8a1c1c}}
input{{width:100%;font-size:17px;padding:10px;box-sizing:border-box}} li{{margin:4px 0}}
</style></head><body>{body}</body></html>"""
