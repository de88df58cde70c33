"""Product illustrations for the demo catalogue, drawn as SVG: one drawing per kind of
product (rod, reel, lure, soft bait, swimbait, tackle box, waders) in the product's colours.

The output is deterministic, so loading the demo twice writes the same bytes.
"""

from __future__ import annotations

WIDTH, HEIGHT = 480, 360


def _background(colour: str, tint: str) -> str:
    return f"""<defs>
  <linearGradient id="bg" x1="0" y1="0" x2="0" y2="1">
    <stop offset="0" stop-color="{tint}"/>
    <stop offset="1" stop-color="#ffffff"/>
  </linearGradient>
  <linearGradient id="body" x1="0" y1="0" x2="0" y2="1">
    <stop offset="0" stop-color="{colour}"/>
    <stop offset="1" stop-color="{colour}" stop-opacity=".78"/>
  </linearGradient>
  <radialGradient id="shine" cx=".35" cy=".3" r=".7">
    <stop offset="0" stop-color="#ffffff" stop-opacity=".55"/>
    <stop offset="1" stop-color="#ffffff" stop-opacity="0"/>
  </radialGradient>
</defs>
<rect width="{WIDTH}" height="{HEIGHT}" fill="url(#bg)"/>
<circle cx="380" cy="70" r="120" fill="{colour}" opacity=".07"/>
<circle cx="70" cy="320" r="90" fill="{colour}" opacity=".06"/>
<ellipse cx="240" cy="312" rx="170" ry="14" fill="#0b2a3c" opacity=".08"/>"""


def _rod(colour: str, accent: str) -> str:
    return f"""<g stroke-linecap="round">
  <path d="M70 290 L430 70" stroke="#1b2631" stroke-width="5"/>
  <path d="M70 290 L430 70" stroke="{colour}" stroke-width="3"/>
  <path d="M66 293 L150 241" stroke="#c89b62" stroke-width="16"/>
  <path d="M66 293 L150 241" stroke="#a97b44" stroke-width="16" stroke-dasharray="3 9" opacity=".5"/>
  <path d="M150 241 L178 224" stroke="#2b2f36" stroke-width="12"/>
  <path d="M178 224 L196 213" stroke="{accent}" stroke-width="9"/>
  <path d="M196 213 L214 202" stroke="#c89b62" stroke-width="11"/>
</g>
<g fill="none" stroke="#6b7785" stroke-width="2.5">
  <circle cx="250" cy="180" r="8"/><circle cx="305" cy="146" r="6.5"/><circle cx="352" cy="118" r="5"/>
  <circle cx="392" cy="94" r="4"/><circle cx="428" cy="72" r="3.5"/>
</g>
<path d="M430 70 C 445 140, 440 200, 420 250" stroke="#7a8896" stroke-width="1.2" fill="none"/>
<g transform="translate(420 262)"><ellipse rx="14" ry="7" fill="{accent}"/>
  <path d="M-14 0 l-9 -6 v12z" fill="{colour}"/></g>"""


def _spinning_reel(colour: str, accent: str) -> str:
    return f"""<g>
  <path d="M236 110 L236 60 L206 52 L290 52 L262 60 L262 110 Z" fill="#3a4350"/>
  <rect x="150" y="44" width="200" height="16" rx="8" fill="#2b2f36"/>
  <circle cx="250" cy="180" r="78" fill="url(#body)" stroke="#1b2631" stroke-width="4"/>
  <circle cx="250" cy="180" r="78" fill="url(#shine)"/>
  <circle cx="250" cy="180" r="40" fill="#1b2631"/>
  <circle cx="250" cy="180" r="30" fill="{accent}"/>
  <circle cx="250" cy="180" r="10" fill="#e5e7eb"/>
  <path d="M250 180 L360 210" stroke="#3a4350" stroke-width="10" stroke-linecap="round"/>
  <rect x="350" y="196" width="30" height="44" rx="12" fill="#c89b62" stroke="#7a5630" stroke-width="3"/>
  <path d="M180 255 h140 l-18 30 h-104 z" fill="#3a4350"/>
  <rect x="140" y="150" width="36" height="60" rx="10" fill="{accent}" stroke="#1b2631" stroke-width="3"/>
</g>"""


def _baitcasting_reel(colour: str, accent: str) -> str:
    return f"""<g>
  <rect x="90" y="230" width="300" height="14" rx="7" fill="#2b2f36"/>
  <path d="M120 160 C120 110 180 96 250 96 C320 96 380 110 380 160 L380 214 C380 236 360 240 340 240 L160 240
           C140 240 120 236 120 214 Z" fill="url(#body)" stroke="#1b2631" stroke-width="4"/>
  <path d="M120 160 C120 110 180 96 250 96 C320 96 380 110 380 160 Z" fill="url(#shine)"/>
  <ellipse cx="166" cy="176" rx="36" ry="44" fill="#1b2631"/>
  <ellipse cx="166" cy="176" rx="24" ry="32" fill="{accent}"/>
  <rect x="210" y="150" width="120" height="52" rx="10" fill="#1b2631" opacity=".85"/>
  <rect x="222" y="162" width="96" height="28" rx="6" fill="#e5e7eb" opacity=".9"/>
  <path d="M360 170 L430 136" stroke="#3a4350" stroke-width="10" stroke-linecap="round"/>
  <ellipse cx="436" cy="132" rx="20" ry="13" fill="#c89b62" stroke="#7a5630" stroke-width="3"/>
  <ellipse cx="396" cy="196" rx="18" ry="11" fill="#c89b62" stroke="#7a5630" stroke-width="3"/>
</g>"""


def _treble(x: int, y: int) -> str:
    return f"""<g stroke="#4b5563" stroke-width="3" fill="none" stroke-linecap="round">
  <path d="M{x} {y} v26"/><path d="M{x} {y + 26} c-14 0 -16 -12 -10 -16"/>
  <path d="M{x} {y + 26} c14 0 16 -12 10 -16"/>
</g><circle cx="{x}" cy="{y - 4}" r="5" fill="none" stroke="#4b5563" stroke-width="3"/>"""


def _crankbait(colour: str, accent: str) -> str:
    return f"""<g>
  <path d="M96 176 L40 236 L66 246 L124 196 Z" fill="#cfe3ee" stroke="#7a8896" stroke-width="3" opacity=".9"/>
  <ellipse cx="240" cy="170" rx="150" ry="70" fill="url(#body)" stroke="#1b2631" stroke-width="4"/>
  <path d="M110 170 C150 230 330 236 386 178 C370 220 300 240 240 240 C170 240 120 210 110 170 Z"
      fill="#ffffff" opacity=".6"/>
  <g fill="{accent}" opacity=".55">
    <path d="M200 110 l14 24 l14 -24z"/><path d="M240 106 l14 24 l14 -24z"/><path d="M280 110 l14 24 l14 -24z"/>
    <path d="M320 120 l12 22 l12 -22z"/>
  </g>
  <ellipse cx="240" cy="150" rx="150" ry="46" fill="url(#shine)"/>
  <circle cx="148" cy="158" r="18" fill="#fff7d6" stroke="#1b2631" stroke-width="3"/>
  <circle cx="152" cy="158" r="9" fill="#111827"/>
  <path d="M386 166 l24 -6" stroke="#4b5563" stroke-width="3" stroke-linecap="round"/>
</g>
{_treble(210, 240)}{_treble(330, 232)}"""


def _soft_bait(colour: str, accent: str) -> str:
    return f"""<g stroke-linecap="round" fill="none">
  <path d="M90 180 C 150 120, 210 120, 250 170 S 340 230, 380 170 S 430 110, 440 150"
      stroke="#1b2631" stroke-width="38" opacity=".15"/>
  <path d="M90 176 C 150 116, 210 116, 250 166 S 340 226, 380 166 S 430 106, 440 146"
      stroke="url(#body)" stroke-width="34"/>
  <path d="M90 176 C 150 116, 210 116, 250 166" stroke="#ffffff" stroke-width="6" opacity=".35"/>
  <g stroke="{accent}" stroke-width="3" opacity=".7">
    <path d="M140 132 l8 22"/><path d="M160 126 l6 22"/><path d="M180 124 l4 22"/>
    <path d="M200 128 l2 22"/><path d="M220 136 l0 22"/>
  </g>
</g>
<g fill="{accent}" opacity=".8"><circle cx="300" cy="190" r="2.5"/><circle cx="320" cy="200" r="2"/>
  <circle cx="340" cy="196" r="2.5"/><circle cx="360" cy="186" r="2"/></g>
<path d="M70 178 C 60 150, 96 140, 104 160" stroke="#4b5563" stroke-width="4" fill="none" stroke-linecap="round"/>"""


def _swimbait(colour: str, accent: str) -> str:
    return f"""<g>
  <path d="M60 170 C 100 100, 250 90, 330 140 L 360 150 L 420 100 L 410 170 L 420 240 L 360 190 L 330 200
           C 250 250, 100 240, 60 170 Z" fill="url(#body)" stroke="#1b2631" stroke-width="4"/>
  <path d="M70 176 C 110 232, 250 240, 330 198 L 320 180 C 240 210, 130 210, 70 176 Z" fill="#ffffff" opacity=".65"/>
  <path d="M160 118 L 200 80 L 250 112 Z" fill="{accent}" stroke="#1b2631" stroke-width="3"/>
  <g stroke="#1b2631" stroke-width="2" opacity=".35"><path d="M200 112 C 210 150, 210 190, 200 228"/>
  <path d="M270 122 C 280 160, 280 190, 270 222"/></g>
  <g fill="{accent}" opacity=".5"><circle cx="170" cy="150" r="7"/><circle cx="210" cy="140" r="6"/>
  <circle cx="240" cy="158" r="7"/>
    <circle cx="280" cy="146" r="6"/><circle cx="300" cy="166" r="5"/></g>
  <path d="M60 170 C 100 100, 250 90, 330 140" fill="none" stroke="#ffffff" stroke-width="5" opacity=".4"/>
  <circle cx="104" cy="158" r="13" fill="#fff7d6" stroke="#1b2631" stroke-width="3"/>
  <circle cx="107" cy="158" r="6" fill="#111827"/>
  <path d="M62 176 L 92 182" stroke="#1b2631" stroke-width="3" stroke-linecap="round"/>
</g>
{_treble(220, 226)}"""


def _tackle_box(colour: str, accent: str) -> str:
    return f"""<g>
  <path d="M190 96 C 190 66, 290 66, 290 96" fill="none" stroke="#1b2631" stroke-width="12" stroke-linecap="round"/>
  <rect x="90" y="100" width="300" height="70" rx="14" fill="url(#body)" stroke="#1b2631" stroke-width="4"/>
  <rect x="90" y="100" width="300" height="70" rx="14" fill="url(#shine)"/>
  <rect x="90" y="168" width="300" height="120" rx="14" fill="url(#body)" stroke="#1b2631" stroke-width="4"/>
  <rect x="106" y="184" width="268" height="88" rx="8" fill="#ffffff" opacity=".85"/>
  <g stroke="#9ca3af" stroke-width="3"><path d="M196 184 v88"/><path d="M286 184 v88"/><path d="M106 228 h268"/></g>
  <g><circle cx="150" cy="206" r="8" fill="{accent}"/><ellipse cx="240" cy="206" rx="18" ry="8" fill="{colour}"/>
    <rect x="316" y="198" width="30" height="14" rx="7" fill="{accent}"/>
    <circle cx="140" cy="250" r="6" fill="{colour}"/>
    <circle cx="160" cy="250" r="6" fill="{accent}"/><ellipse cx="240" cy="250" rx="22" ry="7" fill="{accent}"/>
    <circle cx="330" cy="250" r="9" fill="{colour}"/></g>
  <rect x="222" y="156" width="36" height="22" rx="5" fill="#d1d5db" stroke="#1b2631" stroke-width="3"/>
</g>"""


def _waders(colour: str, accent: str) -> str:
    return f"""<g stroke="#1b2631" stroke-width="4" stroke-linejoin="round">
  <path d="M186 56 L 208 120 M 294 56 L 272 120" stroke="{accent}" stroke-width="10" stroke-linecap="round"/>
  <path d="M170 110 L 310 110 L 318 190 L 300 290 L 256 290 L 246 200 L 234 200 L 224 290 L 180 290 L 162 190 Z"
        fill="url(#body)"/>
  <path d="M170 110 L 310 110 L 312 132 L 168 132 Z" fill="{accent}"/>
  <rect x="212" y="146" width="56" height="38" rx="6" fill="{colour}" opacity=".9"/>
  <path d="M176 282 L 170 312 L 232 312 L 226 282 Z" fill="#2b2f36"/>
  <path d="M254 282 L 248 312 L 310 312 L 304 282 Z" fill="#2b2f36"/>
</g>
<path d="M170 110 L 310 110 L 318 190 L 300 290 L 256 290" fill="url(#shine)" opacity=".6"/>"""


DRAWINGS = {
    "rod": _rod,
    "spinning-reel": _spinning_reel,
    "baitcasting-reel": _baitcasting_reel,
    "crankbait": _crankbait,
    "soft-bait": _soft_bait,
    "swimbait": _swimbait,
    "tackle-box": _tackle_box,
    "waders": _waders,
}


def _tint(hex_colour: str, amount: float = 0.82) -> str:
    """The colour mixed with white: the picture's background."""
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    r, g, b = (round(c + (255 - c) * amount) for c in (r, g, b))
    return f"#{r:02x}{g:02x}{b:02x}"


def product_svg(*, kind: str, colour: str, accent: str, title: str) -> str:
    """An illustration of one product; `title` becomes the SVG's accessible name."""
    drawing = DRAWINGS[kind](colour, accent)
    safe_title = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{safe_title}">\n<title>{safe_title}</title>\n'
        f"{_background(colour, _tint(colour))}\n{drawing}\n</svg>\n"
    )
