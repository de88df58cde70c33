"""The demo catalogue: the workshop's fishing shop, with stock, descriptions and pictures."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoCategory:
    slug: str
    name: str
    description: str


@dataclass(frozen=True)
class DemoProduct:
    slug: str
    title: str
    category: str
    price_cents: int
    stock: int
    kind: str  # which drawing pictures.product_svg makes
    colour: str
    accent: str
    description: str
    featured: bool = False


CATEGORIES = [
    DemoCategory("rods", "Rods", "Casting and spinning rods for every water, from trout streams to muskie lakes."),
    DemoCategory("reels", "Reels", "Spinning and baitcasting reels with smooth drags that hold when it counts."),
    DemoCategory("hard-baits", "Hard Baits", "Crankbaits, jerkbaits and topwaters that dive, wobble and rattle."),
    DemoCategory("soft-baits", "Soft Baits", "Worms, grubs and creatures in the colours fish actually bite."),
    DemoCategory("swim-baits", "Swim Baits", "Big, lifelike swimbaits and glide baits for big, picky fish."),
    DemoCategory("tackle-storage", "Tackle Storage", "Boxes and bags that keep hooks sharp and lures tidy."),
    DemoCategory("waders", "Waders", "Chest and hip waders to get closer to the fish, and stay dry doing it."),
]

PRODUCTS = [
    # Rods
    DemoProduct(
        "muskie-casting-rod",
        "Muskie Casting Rod",
        "rods",
        14999,
        25,
        "rod",
        "#1f4e79",
        "#e4572e",
        "An 8'6\" extra-heavy casting rod built for the fish of ten thousand casts. The fast tip "
        "drives hooks through bony jaws, the full-length backbone turns big fish at the boat, and "
        "the split cork grip stays comfortable through a full day of figure-eights.",
        featured=True,
    ),
    DemoProduct(
        "tourney-casting-rod",
        "Tourney Casting Rod",
        "rods",
        4999,
        40,
        "rod",
        "#2f6b3a",
        "#f2c14e",
        "A 7' medium-heavy casting rod that tournament anglers trust for jigs, spinnerbaits and "
        "crankbaits. Light in the hand, sensitive on the bottom, and priced for a rod locker full.",
        featured=True,
    ),
    DemoProduct(
        "bass-pro-spinning-rod",
        "Bass Pro Spinning Rod",
        "rods",
        7999,
        18,
        "rod",
        "#6b3fa0",
        "#e5e7eb",
        "A 6'10\" medium spinning rod for finesse presentations: drop shots, ned rigs and wacky "
        "worms. Graphite blank, titanium-oxide guides and a fast action tip.",
    ),
    DemoProduct(
        "trout-ultralight-rod",
        "Trout Ultralight Rod",
        "rods",
        6499,
        3,
        "rod",
        "#8a5a2b",
        "#9fd3c7",
        "A 5'6\" two-piece ultralight for small streams and stocked ponds. Casts tiny spinners a "
        "mile and makes a ten-inch brown feel like a trophy.",
    ),
    DemoProduct(
        "travel-telescopic-rod",
        "Travel Telescopic Rod",
        "rods",
        3999,
        30,
        "rod",
        "#374151",
        "#e4572e",
        "Collapses to 16 inches and extends to a 7' medium rod in seconds. Lives in the car, the "
        "backpack or the suitcase, ready when water shows up.",
    ),
    # Reels
    DemoProduct(
        "spinning-reel",
        "Spinning Reel",
        "reels",
        2999,
        60,
        "spinning-reel",
        "#3b4a5a",
        "#e4572e",
        "A 2500-size spinning reel with a sealed drag and a 6.2:1 gear ratio. Smooth enough for "
        "light line, tough enough to leave in the boat all season.",
        featured=True,
    ),
    DemoProduct(
        "baitcasting-reel",
        "Baitcasting Reel",
        "reels",
        29999,
        8,
        "baitcasting-reel",
        "#7a1f2b",
        "#f2c14e",
        "Our flagship baitcaster: magnesium frame, ten bearings, a centrifugal brake you can set "
        "once and forget, and a carbon drag stack that stops muskie runs cold.",
        featured=True,
    ),
    DemoProduct(
        "low-profile-baitcaster",
        "Low-Profile Baitcaster",
        "reels",
        12999,
        0,
        "baitcasting-reel",
        "#155170",
        "#9fd3c7",
        "A palm-sized baitcaster with a 7.5:1 gear ratio for burning crankbaits and ripping "
        "lipless baits through grass.",
    ),
    DemoProduct(
        "saltwater-spinning-reel",
        "Saltwater Spinning Reel",
        "reels",
        8999,
        14,
        "spinning-reel",
        "#0f766e",
        "#e5e7eb",
        "A 4000-size spinning reel with sealed bearings and an anodised spool that shrugs off salt "
        "spray, surf and the occasional dunking.",
    ),
    # Hard baits
    DemoProduct(
        "square-bill-silent-crankbait",
        "Square-Bill Silent Crankbait",
        "hard-baits",
        639,
        120,
        "crankbait",
        "#d97706",
        "#7c2d12",
        "A silent square-bill that deflects off wood and rock without a rattle to spook pressured "
        "fish. Dives three to five feet; craw orange with a chartreuse belly.",
        featured=True,
    ),
    DemoProduct(
        "deep-diving-crankbait",
        "Deep Diving Crankbait",
        "hard-baits",
        749,
        80,
        "crankbait",
        "#2563eb",
        "#1e3a8a",
        "A long-lipped crankbait that reaches fifteen feet on a long cast and digs the bottom "
        "where summer fish hold. Sexy shad finish.",
    ),
    DemoProduct(
        "topwater-popper",
        "Topwater Popper",
        "hard-baits",
        899,
        2,
        "crankbait",
        "#16a34a",
        "#14532d",
        "A cupped-face popper that spits and chugs on every twitch. Deadly at first light around "
        "lily pads and laydowns.",
        featured=True,
    ),
    DemoProduct(
        "lipless-rattle-bait",
        "Lipless Rattle Bait",
        "hard-baits",
        799,
        65,
        "crankbait",
        "#dc2626",
        "#7f1d1d",
        "A loud, lipless bait for covering water fast. Yo-yo it through submerged grass for "
        "reaction strikes in spring.",
    ),
    DemoProduct(
        "suspending-jerkbait",
        "Suspending Jerkbait",
        "hard-baits",
        949,
        45,
        "crankbait",
        "#64748b",
        "#0f172a",
        "A slender minnow jerkbait that suspends dead still between twitches, just like a dying "
        "baitfish in cold water.",
    ),
    # Soft baits
    DemoProduct(
        "curly-tail-grub",
        "Curly Tail Grub (10-pack)",
        "soft-baits",
        499,
        150,
        "soft-bait",
        "#ca8a04",
        "#713f12",
        "The grub that has caught more fish than any lure ever made. Salt-impregnated plastic with "
        "a tail that swims at the slowest retrieve.",
    ),
    DemoProduct(
        "stick-worm",
        "Stick Worm (20-pack)",
        "soft-baits",
        699,
        90,
        "soft-bait",
        "#65a30d",
        "#1a2e05",
        "A dense, salted stick worm that falls with a seductive shimmy. Rig it weightless, wacky or on a shaky head.",
    ),
    DemoProduct(
        "creature-bait",
        "Creature Bait (8-pack)",
        "soft-baits",
        549,
        4,
        "soft-bait",
        "#7e22ce",
        "#3b0764",
        "Flapping claws and appendages that move water on a Texas rig or a punch rig. Junebug with a blue tail.",
    ),
    DemoProduct(
        "paddle-tail-minnow",
        "Paddle Tail Minnow (6-pack)",
        "soft-baits",
        599,
        70,
        "soft-bait",
        "#94a3b8",
        "#1e293b",
        "A soft minnow with a thumping paddle tail. Thread it on a jig head or an underspin for "
        "a bait that never stops swimming.",
    ),
    # Swim baits
    DemoProduct(
        "glide-bait",
        "Glide Bait",
        "swim-baits",
        2499,
        12,
        "swimbait",
        "#a16207",
        "#fef3c7",
        "A nine-inch glide bait that walks side to side in a wide, lazy S. Pulls the biggest fish "
        "in the lake out of cover to look, and often to eat.",
        featured=True,
    ),
    DemoProduct(
        "jointed-swimbait",
        "Jointed Swimbait",
        "swim-baits",
        1899,
        4,
        "swimbait",
        "#0e7490",
        "#cffafe",
        "A three-piece jointed swimbait with a realistic tail kick at any speed. Slow sinking, "
        "with a rattle chamber in the head.",
    ),
    DemoProduct(
        "soft-swimbait-shad",
        "Soft Swimbait Shad",
        "swim-baits",
        1299,
        35,
        "swimbait",
        "#475569",
        "#e2e8f0",
        "A pre-rigged soft shad with a weighted belly hook. Cast, count down and reel: it does the rest.",
    ),
    # Tackle storage
    DemoProduct(
        "three-tray-tackle-box",
        "Three-Tray Tackle Box",
        "tackle-storage",
        3499,
        22,
        "tackle-box",
        "#b45309",
        "#e4572e",
        "Three cantilever trays that open out in one motion, with a deep bottom bin for reels, "
        "pliers and spare spools.",
    ),
    DemoProduct(
        "utility-box-3700",
        "Utility Box 3700",
        "tackle-storage",
        999,
        100,
        "tackle-box",
        "#0369a1",
        "#f2c14e",
        "The standard-sized clear box with adjustable dividers. Fits every tackle bag we sell, and most that we don't.",
    ),
    DemoProduct(
        "waterproof-tackle-bag",
        "Waterproof Tackle Bag",
        "tackle-storage",
        5999,
        9,
        "tackle-box",
        "#1f2937",
        "#16a34a",
        "A welded, waterproof bag that carries four 3700 boxes and keeps them dry in a downpour or "
        "at the bottom of the boat.",
    ),
    # Waders
    DemoProduct(
        "breathable-chest-waders",
        "Breathable Chest Waders",
        "waders",
        18999,
        15,
        "waders",
        "#4d5d3a",
        "#1f2937",
        "Four-layer breathable shell, reinforced knees and integrated gravel guards. Warm enough "
        "for spring steelhead, cool enough for summer smallmouth.",
        featured=True,
    ),
    DemoProduct(
        "neoprene-chest-waders",
        "Neoprene Chest Waders",
        "waders",
        12999,
        5,
        "waders",
        "#3f3f46",
        "#e4572e",
        "5mm neoprene with insulated boots for cold water and late-season days. Taped seams and "
        "an inside pocket for the car keys.",
    ),
    DemoProduct(
        "hip-waders",
        "Hip Waders",
        "waders",
        6999,
        20,
        "waders",
        "#365314",
        "#a3a3a3",
        "Lightweight rubber hip waders with cleated soles for creek crossings and shallow flats.",
    ),
]
