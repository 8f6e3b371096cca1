"""Scenes: rendered videos whose visible events cause the sounds, drawn with the source package's own art.

Four scene families, one per clip, each with several events at whole frames and quiet stretches between them:

- `impact`: targets of distinct materials (a wooden board, a stone block, a metal plate, a patch of dirt, a game
  animal, a shield on a post, two crossed swords). Arrows and sling stones fly in and hit them at the event frame
  (arrows stick in wood, dirt and flesh and glance off stone and metal; stones bounce off); swords swing into
  shields or into each other. The target's texture is the material's art from the package.
- `walk`: a walker crosses one to three ground patches (grass, gravel, sand, snow, wooden boards, each a terrain
  texture from the package) and pauses now and then; every footfall lands at an event frame on the patch whose
  recording is heard, leaving a footprint and a puff.
- `work`: tools at work: an axe on a tree (bark texture, tree portrait crown), a pick on a stone or a metal-ore
  boulder, a hammer on a plank, a saw on a log; wind-up, strike at the event frame, chips or sparks.
- `animals`: one to three animals (the package's portraits, cut out) on a meadow; the one whose call is heard
  rears up and sends out sound rings for as long as its call lasts.

An ambience bed (water, rain, wind or fire) may run under any scene, and is always visible: a river band, rain
streaks, blowing leaves, a camp fire. Layout, scale, colours, sky, camera zoom and drift, speeds and timing are
random per clip. At every event frame a contact flash or pop appears exactly at that frame (not one earlier), so
"what is seen at frame k" and "what is heard from sample k * sr / fps" line up; effects linger for about 0.3 s
so that 4 fps sampling still sees them.

All randomness comes from the generator passed in: a clip is a pure function of (catalogue, seed, index).

The package: `art` (art by role, image helpers), `draw` (particles, flashes, people, tools, sky and ground),
`base` (the families' categories, `Ctx`, `SceneEvent`, `Scene`), one module per family (`impact`, `walk`,
`work`, `animals`), `ambience` (the ambience layers) and `plan` (camera, grade and `plan_clip`).
"""

from training.datasets.scenes.ambience import AmbienceLayer
from training.datasets.scenes.animals import AnimalScene
from training.datasets.scenes.art import ArtLibrary, cutout, mean_colour, opaque_crop, tile, tread_plate
from training.datasets.scenes.base import AMBIENCES, FAMILIES, Ctx, Scene, SceneEvent, plan_frames
from training.datasets.scenes.draw import (
    SKIES,
    Particles,
    Person,
    Swing,
    draw_arrow,
    draw_flash,
    draw_tool,
    paint_ground,
    paint_sky,
)
from training.datasets.scenes.impact import WHOOSH_STRIKE, ImpactScene
from training.datasets.scenes.plan import (
    AMBIENCE_RMS_DB,
    FAMILY_WEIGHTS,
    SCENES,
    Camera,
    ClipPlan,
    choose_family,
    colour_matrix,
    make_camera,
    plan_clip,
)
from training.datasets.scenes.walk import WalkScene
from training.datasets.scenes.work import WorkScene, anvil_sprite

__all__ = [
    "AMBIENCES", "AMBIENCE_RMS_DB", "FAMILIES", "FAMILY_WEIGHTS", "SCENES", "SKIES", "WHOOSH_STRIKE",
    "AmbienceLayer", "AnimalScene", "ArtLibrary", "Camera", "ClipPlan", "Ctx", "ImpactScene", "Particles", "Person",
    "Scene", "SceneEvent", "Swing", "WalkScene", "WorkScene", "anvil_sprite", "choose_family", "colour_matrix",
    "cutout", "draw_arrow", "draw_flash", "draw_tool", "make_camera", "mean_colour", "opaque_crop", "paint_ground",
    "paint_sky", "plan_clip", "plan_frames", "tile", "tread_plate",
]
