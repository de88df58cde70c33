"""Postal addresses as each country we deliver to writes them: which fields it has, what they are
called, which postcodes are real, and the order of the lines on an envelope."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

US_STATES = (
    ("AL", "Alabama"), ("AK", "Alaska"), ("AZ", "Arizona"), ("AR", "Arkansas"), ("CA", "California"),
    ("CO", "Colorado"), ("CT", "Connecticut"), ("DE", "Delaware"), ("DC", "District of Columbia"),
    ("FL", "Florida"), ("GA", "Georgia"), ("HI", "Hawaii"), ("ID", "Idaho"), ("IL", "Illinois"),
    ("IN", "Indiana"), ("IA", "Iowa"), ("KS", "Kansas"), ("KY", "Kentucky"), ("LA", "Louisiana"),
    ("ME", "Maine"), ("MD", "Maryland"), ("MA", "Massachusetts"), ("MI", "Michigan"), ("MN", "Minnesota"),
    ("MS", "Mississippi"), ("MO", "Missouri"), ("MT", "Montana"), ("NE", "Nebraska"), ("NV", "Nevada"),
    ("NH", "New Hampshire"), ("NJ", "New Jersey"), ("NM", "New Mexico"), ("NY", "New York"),
    ("NC", "North Carolina"), ("ND", "North Dakota"), ("OH", "Ohio"), ("OK", "Oklahoma"), ("OR", "Oregon"),
    ("PA", "Pennsylvania"), ("RI", "Rhode Island"), ("SC", "South Carolina"), ("SD", "South Dakota"),
    ("TN", "Tennessee"), ("TX", "Texas"), ("UT", "Utah"), ("VT", "Vermont"), ("VA", "Virginia"),
    ("WA", "Washington"), ("WV", "West Virginia"), ("WI", "Wisconsin"), ("WY", "Wyoming"),
    ("AS", "American Samoa"), ("GU", "Guam"), ("MP", "Northern Mariana Islands"), ("PR", "Puerto Rico"),
    ("VI", "U.S. Virgin Islands"), ("AA", "Armed Forces Americas"), ("AE", "Armed Forces Europe"),
    ("AP", "Armed Forces Pacific"),
)  # fmt: skip

CA_PROVINCES = (
    ("AB", "Alberta"), ("BC", "British Columbia"), ("MB", "Manitoba"), ("NB", "New Brunswick"),
    ("NL", "Newfoundland and Labrador"), ("NS", "Nova Scotia"), ("NT", "Northwest Territories"),
    ("NU", "Nunavut"), ("ON", "Ontario"), ("PE", "Prince Edward Island"), ("QC", "Quebec"),
    ("SK", "Saskatchewan"), ("YT", "Yukon"),
)  # fmt: skip

AU_STATES = (
    ("ACT", "Australian Capital Territory"), ("NSW", "New South Wales"), ("NT", "Northern Territory"),
    ("QLD", "Queensland"), ("SA", "South Australia"), ("TAS", "Tasmania"), ("VIC", "Victoria"),
    ("WA", "Western Australia"),
)  # fmt: skip


def _digits(n: int) -> Callable[[str], str | None]:
    def normal(value: str) -> str | None:
        value = value.replace(" ", "")
        return value if re.fullmatch(rf"[0-9]{{{n}}}", value) else None

    return normal


def _us_zip(value: str) -> str | None:
    value = value.replace(" ", "")
    return value if re.fullmatch(r"[0-9]{5}(-[0-9]{4})?", value) else None


def _ca_postal(value: str) -> str | None:
    # Canada Post never uses D, F, I, O, Q or U, nor W or Z as the first letter.
    compact = value.replace(" ", "").upper()
    if not re.fullmatch(r"[ABCEGHJ-NPRSTVXY][0-9][ABCEGHJ-NPRSTV-Z][0-9][ABCEGHJ-NPRSTV-Z][0-9]", compact):
        return None
    return f"{compact[:3]} {compact[3:]}"


def _uk_postcode(value: str) -> str | None:
    # The outward code (area and district) then the inward code (sector and unit), as Royal Mail writes it.
    compact = value.replace(" ", "").upper()
    outward = r"(GIR|[A-PR-UWYZ]([0-9]{1,2}|[A-HK-Y][0-9]{1,2}|[0-9][A-HJKPS-UW]|[A-HK-Y][0-9][ABEHMNPRV-Y]))"
    if not re.fullmatch(outward + r"[0-9][ABD-HJLNP-UW-Z]{2}", compact):
        return None
    return f"{compact[:-3]} {compact[-3:]}"


def _eircode(value: str) -> str | None:
    compact = value.replace(" ", "").upper()
    if not re.fullmatch(r"([AC-FHKNPRTV-Y][0-9]{2}|D6W)[0-9AC-FHKNPRTV-Y]{4}", compact):
        return None
    return f"{compact[:3]} {compact[3:]}"


def _nl_postcode(value: str) -> str | None:
    compact = value.replace(" ", "").upper()
    # 1000-9999 and two letters; SA, SD and SS are never issued.
    if not re.fullmatch(r"[1-9][0-9]{3}[A-Z]{2}", compact) or compact[4:] in {"SA", "SD", "SS"}:
        return None
    return f"{compact[:4]} {compact[4:]}"


def _se_postcode(value: str) -> str | None:
    compact = value.replace(" ", "")
    return f"{compact[:3]} {compact[3:]}" if re.fullmatch(r"[1-9][0-9]{4}", compact) else None


@dataclass(frozen=True)
class Convention:
    """How one country's addresses are written. `layout` names the order of the lines:
    "us" (City, ST 12345), "ca"/"au" (City ST 1234), "uk" (town, county, postcode on its own
    line), "postcode_first" (12345 City) and "city_first" (City 1234)."""

    code: str
    layout: str
    postcode_label: str
    postcode_example: str
    postcode: Callable[[str], str | None]
    city_label: str = "City"
    postcode_required: bool = True
    region_label: str = ""
    regions: tuple[tuple[str, str], ...] = field(default=())
    # A county is written by hand and may be left out; a state or province is chosen from a list.
    county: bool = False

    @property
    def has_region_list(self) -> bool:
        return bool(self.regions)

    def as_json(self) -> dict:
        """What the checkout page's script needs to relabel the form as the country changes."""
        return {
            "postcodeLabel": self.postcode_label + ("" if self.postcode_required else " (optional)"),
            "postcodeExample": self.postcode_example,
            "cityLabel": self.city_label,
            "regionLabel": self.region_label if self.regions else "",
            "regions": [list(r) for r in self.regions],
            "countyLabel": f"{self.region_label} (optional)" if self.county else "",
        }


def _postcode_first(code: str, example: str, normal: Callable[[str], str | None]) -> Convention:
    return Convention(code, "postcode_first", "Postcode", example, normal)


# By the name the checkout's country list uses (and PlacedOrder.country stores).
CONVENTIONS: dict[str, Convention] = {
    "United States": Convention(
        "US", "us", "ZIP code", "55802 or 55802-1234", _us_zip, region_label="State", regions=US_STATES
    ),
    "Canada": Convention(
        "CA", "ca", "Postal code", "H2X 1Y4", _ca_postal, region_label="Province or territory", regions=CA_PROVINCES
    ),
    "United Kingdom": Convention(
        "GB", "uk", "Postcode", "SW1A 1AA", _uk_postcode, city_label="Town or city", region_label="County", county=True
    ),
    "Ireland": Convention(
        "IE",
        "uk",
        "Eircode",
        "D02 X285",
        _eircode,
        city_label="Town or city",
        postcode_required=False,
        region_label="County",
        county=True,
    ),
    "Germany": _postcode_first("DE", "10115", _digits(5)),
    "France": _postcode_first("FR", "75001", _digits(5)),
    "Netherlands": _postcode_first("NL", "1012 AB", _nl_postcode),
    "Sweden": _postcode_first("SE", "114 55", _se_postcode),
    "Norway": _postcode_first("NO", "0150", _digits(4)),
    "Finland": _postcode_first("FI", "00100", _digits(5)),
    "Australia": Convention(
        "AU",
        "au",
        "Postcode",
        "2000",
        _digits(4),
        city_label="Suburb or town",
        region_label="State or territory",
        regions=AU_STATES,
    ),
    "New Zealand": Convention("NZ", "city_first", "Postcode", "6011", _digits(4), city_label="Town or city"),
}

COUNTRIES = [(name, name) for name in CONVENTIONS]


def convention_for(country: str) -> Convention | None:
    return CONVENTIONS.get(country)


def address_lines(*, address_line: str, city: str, region: str, postcode: str, country: str) -> list[str]:
    """The lines under the addressee's name, in the order the country's post reads them."""
    convention = convention_for(country)
    layout = convention.layout if convention else "postcode_first"
    if layout == "us":
        locality = [f"{city}, {' '.join(p for p in (region, postcode) if p)}".strip(", ")]
    elif layout in ("ca", "au"):
        locality = [" ".join(p for p in (city, region, postcode) if p)]
    elif layout == "uk":
        locality = [city, region, postcode]
    elif layout == "city_first":
        locality = [" ".join(p for p in (city, postcode) if p)]
    else:
        locality = [" ".join(p for p in (postcode, city) if p)]
    return [line for line in (address_line, *locality, country) if line]
