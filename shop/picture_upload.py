"""What a product picture uploaded in the admin may be: a PNG, JPEG or WebP image that is what
its name says, or an SVG drawing with nothing active in it. The shop serves its media from its
own origin, so a picture with a script in it would run as the shop when opened (with the session
of the merchant who opens it). config.media serves them sandboxed as well."""

from __future__ import annotations

from xml.etree.ElementTree import TreeBuilder as XmlTreeBuilder

from django.core.exceptions import ValidationError
from django.core.files import File

MAX_BYTES = 5 * 1024 * 1024
SVG = "{http://www.w3.org/2000/svg}"
# Elements that run code or embed a document of their own.
ACTIVE_ELEMENTS = {"script", "foreignObject", "iframe", "embed", "object", "handler", "listener"}
# Whole vocabularies that have no place in a drawing: an HTML page's (forms, refreshes, links
# with actions) and XSLT's (a drawing that is its own stylesheet builds the script it wants).
FOREIGN_NAMESPACES = ("{http://www.w3.org/1999/xhtml}", "{http://www.w3.org/1999/XSL/Transform}")
# Animation elements, which may set an attribute (a link's target) to a script.
ANIMATIONS = {"set", "animate", "animateTransform", "animateMotion"}
LINK_ATTRIBUTES = {"href", "src", "action", "formaction"}
RASTER_DATA = ("data:image/png", "data:image/jpeg", "data:image/webp")
# A phone's photo with a second picture in it (a depth map, a preview) is an MPO to Pillow, and
# the JPEG it is to a browser.
RASTER_FORMATS = {"png": {"PNG"}, "jpg": {"JPEG", "MPO"}, "jpeg": {"JPEG", "MPO"}, "webp": {"WEBP"}}


def _local(name: str) -> str:
    """An element's or attribute's name without its namespace, however written ({uri}name, p:name)."""
    return name.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


def _scripted_link(value: str) -> bool:
    """A link to a script, or to a document carried in the link itself (a data: URL that is not a
    raster image)."""
    squeezed = "".join(value.split()).lower()
    if squeezed.startswith(("javascript:", "vbscript:")):
        return True
    return squeezed.startswith("data:") and not squeezed.startswith(RASTER_DATA)


class _Builder(XmlTreeBuilder):
    """The tree, and the processing instructions met anywhere (ElementTree drops them): an
    <?xml-stylesheet?> makes the drawing a document transformed by a stylesheet."""

    def __init__(self):
        super().__init__()
        self.instructions: list[str] = []

    def pi(self, target, text=None):
        self.instructions.append(target)
        return super().pi(target, text)


def _refused(message: str) -> ValidationError:
    return ValidationError(message, code="picture_active")


def _svg_check(data: bytes) -> None:
    # Imported here: every process loads the models, and only an upload needs the parsers.
    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    builder = _Builder()
    try:
        parser = ElementTree.DefusedXMLParser(target=builder, forbid_dtd=True)
        parser.feed(data)
        root = parser.close()
    except (ElementTree.ParseError, DefusedXmlException, ValueError):
        raise ValidationError("This SVG could not be read as a drawing.", code="picture_unreadable") from None
    if builder.instructions:
        raise _refused(f"SVG pictures may not carry processing instructions (<?{builder.instructions[0]}?>).")
    if root.tag != f"{SVG}svg":
        raise ValidationError("This file is not an SVG drawing.", code="picture_not_svg")
    for element in root.iter():
        tag = element.tag if isinstance(element.tag, str) else ""
        name = _local(tag)
        if name in ACTIVE_ELEMENTS:
            raise _refused(f"SVG pictures may not contain <{name}>.")
        if tag.startswith(FOREIGN_NAMESPACES):
            raise _refused(f"SVG pictures may not contain HTML or XSLT (<{name}>).")
        if name in ANIMATIONS and _local(element.get("attributeName", "")).lower() in LINK_ATTRIBUTES:
            raise _refused("SVG pictures may not animate a link.")
        for attribute, value in element.attrib.items():
            local = _local(attribute).lower()
            if attribute.startswith(FOREIGN_NAMESPACES):
                raise _refused(f"SVG pictures may not carry HTML or XSLT attributes ({local}).")
            if local.startswith("on"):
                raise _refused(f"SVG pictures may not carry event handlers ({local}).")
            if local in LINK_ATTRIBUTES and _scripted_link(value):
                raise _refused("SVG pictures may not link to scripts or documents.")


def _raster_check(file: File, extension: str) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            found = image.format
            image.verify()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError):
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
