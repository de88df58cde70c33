"""A product picture uploaded in the admin is served from the shop's own origin: nothing active
may be planted there by whoever may change products (an SVG's script would run as the shop, with
the session of the merchant who opens it), and what is served is sandboxed all the same."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from shop.models import Product
from shop.picture_upload import picture_validate
from shop.pictures import product_svg

pytestmark = pytest.mark.django_db

SVG_NS = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'

SVG_OPEN = b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10">'
EVIL_SVG = SVG_OPEN + b"<script>fetch('/admin/auth/user/')</script></svg>"


def _png(fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "#336699").save(out, fmt)
    return out.getvalue()


@pytest.fixture
def junior(django_user_model, settings, tmp_path) -> Client:
    """Staff who may only look at and change products."""
    settings.MEDIA_ROOT = tmp_path / "media"
    user = django_user_model.objects.create_user("junior", "junior@example.com", "a-long-test-password", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="shop", codename__in=["view_product", "change_product"])
    )
    client = Client()
    client.force_login(user)
    return client


def _change_form(product: Product, **overrides) -> dict:
    return {
        "title": product.title,
        "slug": product.slug,
        "category": product.category_id,
        "price_cents": product.price_cents,
        "stock": product.stock,
        "initial-stock": product.stock,
        "supplier": "",
        "reorder_point": 0,
        "is_active": "on",
        "description": "",
        **overrides,
    }


def test_an_svg_with_a_script_is_refused_on_its_field_and_nothing_is_planted(junior, rod):
    url = reverse("admin:shop_product_change", args=[rod.pk])
    picture = SimpleUploadedFile("rod.svg", EVIL_SVG, content_type="image/svg+xml")

    answer = junior.post(url, _change_form(rod, picture=picture))

    assert answer.status_code == 200
    assert "may not contain &lt;script&gt;" in answer.content.decode()
    rod.refresh_from_db()
    assert not rod.picture


def test_a_drawing_is_taken_and_served_sandboxed(junior, rod):
    url = reverse("admin:shop_product_change", args=[rod.pk])
    drawing = product_svg(kind="rod", colour="#336699", accent="#ff9900", title="Tourney Casting Rod").encode()
    picture = SimpleUploadedFile("rod.svg", drawing, content_type="image/svg+xml")

    assert junior.post(url, _change_form(rod, picture=picture)).status_code == 302

    rod.refresh_from_db()
    served = Client().get(rod.picture.url)
    assert served.status_code == 200 and served["Content-Type"] == "image/svg+xml"
    assert "sandbox" in served["Content-Security-Policy"] and "default-src 'none'" in served["Content-Security-Policy"]
    assert served["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "svg",
    [
        SVG_OPEN + b'<rect width="10" height="10" onload="alert(1)"/></svg>',
        SVG_OPEN + b'<foreignObject><body xmlns="http://www.w3.org/1999/xhtml">hi</body></foreignObject></svg>',
        SVG_OPEN + b'<a xlink:href="javascript:alert(1)"><rect width="10" height="10"/></a></svg>',
        SVG_OPEN + b'<a href=" java\nscript:alert(1)"><rect width="10" height="10"/></a></svg>',
        SVG_OPEN + b'<a><set attributeName="href" to="javascript:alert(1)"/><rect width="9" height="9"/></a></svg>',
        SVG_OPEN + b'<a href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;"><rect/></a></svg>',
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
        + SVG_OPEN
        + b"<title>&b;</title></svg>",
        b"<html><script>alert(1)</script></html>",
        b"not a drawing at all",
    ],
    ids=[
        "onload",
        "foreignObject",
        "xlink-javascript",
        "spaced-javascript",
        "animated-href",
        "data-html",
        "dtd",
        "html",
        "text",
    ],
)
def test_an_svg_with_anything_active_or_unreadable_is_refused(svg):
    with pytest.raises(ValidationError):
        picture_validate(SimpleUploadedFile("p.svg", svg))


def test_a_raster_picture_must_be_what_its_name_says():
    picture_validate(SimpleUploadedFile("p.png", _png("PNG")))
    picture_validate(SimpleUploadedFile("p.jpg", _png("JPEG")))
    picture_validate(SimpleUploadedFile("p.webp", _png("WEBP")))
    with pytest.raises(ValidationError, match="not what its name"):
        picture_validate(SimpleUploadedFile("p.png", _png("JPEG")))
    with pytest.raises(ValidationError, match="not a picture"):
        picture_validate(SimpleUploadedFile("p.png", b"<html><script>alert(1)</script></html>"))


def test_a_product_saved_again_keeps_its_stored_picture_unchecked(junior, rod, settings):
    """A picture stored before (perhaps by a release that did not check) is not read again on every save."""
    Product.objects.filter(pk=rod.pk).update(picture="products/gone-from-disk.svg")
    rod.refresh_from_db()
    url = reverse("admin:shop_product_change", args=[rod.pk])

    assert junior.post(url, _change_form(rod, title="Tourney Rod")).status_code == 302
    rod.refresh_from_db()
    assert rod.title == "Tourney Rod" and rod.picture.name == "products/gone-from-disk.svg"


def _refused(name: str, data: bytes) -> bool:
    try:
        picture_validate(SimpleUploadedFile(name, data))
    except ValidationError:
        return True
    return False


def test_svg_that_is_its_own_xslt_stylesheet_is_refused():
    """<?xml-stylesheet?> is dropped by ElementTree before the walk, and a simplified XSLT
    stylesheet may have <svg> as its root: xsl:element builds the <script> the walk looks for."""
    data = (
        b'<?xml-stylesheet type="text/xsl" href="/media/products/x.svg"?>'
        b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"'
        b' xsl:version="1.0"><xsl:element name="script" namespace="http://www.w3.org/1999/xhtml">'
        b"alert(document.domain)</xsl:element></svg>"
    )
    assert _refused("x.svg", data)


def test_animating_xlink_href_to_javascript_is_refused():
    """attributeName="xlink:href", with its prefix: the classic animate-a-link vector."""
    data = (
        f'<svg {SVG_NS}><a><animate attributeName="xlink:href" values="javascript:alert(1)" begin="0s"/>'
        f'<text x="0" y="10">click</text></a></svg>'
    ).encode()
    assert _refused("x.svg", data)


def test_xhtml_form_with_javascript_action_is_refused():
    """An XHTML form inside the drawing: action/formaction are links too."""
    data = (
        f'<svg {SVG_NS} xmlns:h="http://www.w3.org/1999/xhtml">'
        f'<h:form action="javascript:alert(1)"><h:button formaction="javascript:alert(2)">Go</h:button></h:form>'
        f"</svg>"
    ).encode()
    assert _refused("x.svg", data)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def test_decompression_bomb_png_is_a_validation_error_not_a_crash():
    """Pillow raises DecompressionBombError (not an OSError/ValueError) from Image.open for a
    declared 20000x20000 picture: before, the admin answered 500 instead of naming the field."""
    assert _refused("bomb.png", _png_header_only(20000, 20000))


def test_a_phone_camera_jpeg_with_an_mpf_segment_is_accepted():
    """Many phone photos carry a second (depth/preview) picture: Pillow calls them MPO, browsers
    show them as the JPEG they are. Before, refused as 'a MPO image, not what its name says'."""
    out = io.BytesIO()
    first, second = Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")
    first.save(out, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(out.getvalue())).format == "MPO"
    picture_validate(SimpleUploadedFile("photo.jpg", out.getvalue()))
