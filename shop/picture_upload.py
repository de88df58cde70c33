"""What a product picture uploaded in the admin may be: a PNG, JPEG or WebP image that is what
its name says, or an SVG drawing with nothing active in it. The shop serves its media from its
own origin, so a picture with a script in it would run as the shop when opened (with the session
of the merchant who opens it). config.media serves them sandboxed as well."""

from __future__ import annotations

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException
from django.core.exceptions import ValidationError
from django.core.files import File
from PIL import Image, UnidentifiedImageError

MAX_BYTES = 5 * 1024 * 1024
SVG = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
# Elements that run code or embed a document of their own.
ACTIVE_ELEMENTS = {"script", "foreignObject", "iframe", "embed", "object", "handler", "listener"}
# Animation elements, which may set an attribute (a link's target) to a script.
ANIMATIONS = {"set", "animate", "animateTransform", "animateMotion"}
LINK_ATTRIBUTES = {"href", XLINK_HREF, "src"}
RASTER_DATA = ("data:image/png", "data:image/jpeg", "data:image/webp")
RASTER_FORMATS = {"png": {"PNG"}, "jpg": {"JPEG"}, "jpeg": {"JPEG"}, "webp": {"WEBP"}}


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _scripted_link(value: str) -> bool:
    """A link to a script, or to a document carried in the link itself (a data: URL that is not a
    raster image)."""
    squeezed = "".join(value.split()).lower()
    if squeezed.startswith(("javascript:", "vbscript:")):
        return True
    return squeezed.startswith("data:") and not squeezed.startswith(
        ("data:image/png", "data:image/jpeg", "data:image/webp")
    )


def _svg_check(data: bytes) -> None:
    try:
        root = ElementTree.fromstring(data, forbid_dtd=True)
    except (ElementTree.ParseError, DefusedXmlException, ValueError):
        raise ValidationError("This SVG could not be read as a drawing.", code="picture_unreadable") from None
    if root.tag != f"{SVG}svg":
        raise ValidationError("This file is not an SVG drawing.", code="picture_not_svg")
    for element in root.iter():
        name = _local(element.tag) if isinstance(element.tag, str) else ""
        if name in ACTIVE_ELEMENTS:
            raise ValidationError(f"SVG pictures may not contain <{name}>.", code="picture_active")
        if name in ANIMATIONS and _local(element.get("attributeName", "")) in {"href", "src"}:
            raise ValidationError("SVG pictures may not animate a link.", code="picture_active")
        for attribute, value in element.attrib.items():
            local = _local(attribute)
            if local.lower().startswith("on"):
                raise ValidationError(f"SVG pictures may not carry event handlers ({local}).", code="picture_active")
            if (attribute in LINK_ATTRIBUTES or local == "href") and _scripted_link(value):
                raise ValidationError("SVG pictures may not link to scripts or documents.", code="picture_active")


def _raster_check(file: File, extension: str) -> None:
    try:
        with Image.open(file) as image:
            found = image.format
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ValidationError("This file is not a picture that can be shown.", code="picture_unreadable") from None
    if found not in RASTER_FORMATS[extension]:
        raise ValidationError(
            f"This file is a {found or 'different'} image, not what its name (.{extension}) says.",
            code="picture_mismatch",
        )


def picture_validate(file: File) -> None:
    """The product picture's validator (after its extension's): refuses what is not the picture
    its name says, is over MAX_BYTES, or is an SVG with something active in it."""
    if getattr(file, "_committed", False):
        return  # stored before: checked when it was uploaded
    if file.size is not None and file.size > MAX_BYTES:
        raise ValidationError(f"Pictures may be {MAX_BYTES // (1024 * 1024)} MB at most.", code="picture_too_large")
    extension = file.name.rsplit(".", 1)[-1].lower() if "." in file.name else ""
    file.seek(0)
    try:
        if extension == "svg":
            _svg_check(file.read(MAX_BYTES + 1))
        elif extension in RASTER_FORMATS:
            _raster_check(file, extension)
    finally:
        file.seek(0)
