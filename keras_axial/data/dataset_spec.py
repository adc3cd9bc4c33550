"""`DatasetSpec`: what a panoptic dataset's labels mean, and the presets for known datasets.

Plain Python on purpose (no TensorFlow, no NumPy): models, post-processing, evaluation and the
command-line tools import it to learn the number of classes, which classes are things, the label
divisor and the ignore label without paying for TensorFlow.

A spec is stored as JSON next to every converted dataset (`dataset_spec.json`), so readers need no
flags.
"""

import dataclasses
import json
import os
import re

# The panoptic label map is stored losslessly as an RGB PNG (value = R + 256 G + 65536 B, the COCO
# panoptic encoding), so every panoptic id must fit in 24 bits.
MAX_PANOPTIC_ID = 2**24 - 1


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Describes the labels of a panoptic dataset.

    Semantic ids are contiguous, `0 .. num_classes - 1`, in the order of `class_names`. A panoptic
    label is `semantic * label_divisor + instance`; instance 0 is a stuff segment, or a crowd region
    when the class is a thing; pixels of class `ignore_label` are void.

    Args:
        name: short name of the dataset, e.g. `"coco"`.
        class_names: one unique name per contiguous class id.
        thing_class_ids: contiguous ids of the classes with instances (things); the others are
            stuff. Stored sorted.
        label_divisor: the panoptic divisor; instance ids of one class are `1 .. label_divisor - 1`.
        ignore_label: the semantic id of void pixels; must be `>= num_classes`. Defaults to `255`.
        colors: optional `(r, g, b)` per class (0..255) for visualisation. Defaults to `None`.
        category_ids: optional dataset category id per contiguous id (e.g. COCO's official ids
            1..200), used to read and write files in the dataset's own id space. Defaults to `None`
            (contiguous ids are the category ids).

    Attributes:
        num_classes: `len(class_names)`.
        stuff_class_ids: the contiguous ids that are not things, sorted.

    Example:
        >>> spec = DatasetSpec(
        ...     "toy", ["grass", "sky", "cow"], thing_class_ids=[2], label_divisor=256)
        >>> spec.num_classes, spec.stuff_class_ids
        (3, (0, 1))
        >>> DatasetSpec.from_json(spec.to_json()) == spec
        True
    """

    name: str
    class_names: tuple
    thing_class_ids: tuple
    label_divisor: int
    ignore_label: int = 255
    colors: tuple = None
    category_ids: tuple = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", self.name):
            raise ValueError(
                "DatasetSpec `name` must be a non-empty string of letters, digits, '_', '-' or "
                f"'.'. Received: name={self.name!r}"
            )
        self._set("class_names", self._validate_class_names(self.class_names))
        num_classes = len(self.class_names)
        self._set("thing_class_ids", self._validate_thing_ids(self.thing_class_ids, num_classes))
        self._validate_divisor_and_ignore(num_classes)
        if self.colors is not None:
            self._set("colors", self._validate_colors(self.colors, num_classes))
        if self.category_ids is not None:
            self._set("category_ids", self._validate_category_ids(self.category_ids, num_classes))

    # Frozen dataclass: normalised values (lists -> tuples) are written once, here.
    def _set(self, field, value):
        object.__setattr__(self, field, value)

    def _validate_class_names(self, class_names):
        if isinstance(class_names, str) or not isinstance(class_names, (list, tuple)):
            raise TypeError(
                f"DatasetSpec {self.name!r}: `class_names` must be a list of strings. "
                f"Received: class_names={class_names!r}"
            )
        if not class_names:
            raise ValueError(f"DatasetSpec {self.name!r}: `class_names` is empty; expected >= 1.")
        bad = [n for n in class_names if not isinstance(n, str) or not n]
        if bad:
            raise ValueError(
                f"DatasetSpec {self.name!r}: every class name must be a non-empty string. "
                f"Received: {bad!r}"
            )
        duplicates = sorted({n for n in class_names if class_names.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"DatasetSpec {self.name!r}: class names must be unique. Repeated: {duplicates}"
            )
        return tuple(class_names)

    def _validate_thing_ids(self, thing_class_ids, num_classes):
        if not isinstance(thing_class_ids, (list, tuple, set, frozenset)):
            raise TypeError(
                f"DatasetSpec {self.name!r}: `thing_class_ids` must be a list of ints. "
                f"Received: thing_class_ids={thing_class_ids!r}"
            )
        bad = [i for i in thing_class_ids if not _is_int(i) or not 0 <= i < num_classes]
        if bad:
            raise ValueError(
                f"DatasetSpec {self.name!r}: `thing_class_ids` must be contiguous class ids in "
                f"[0, {num_classes}). Received out of range: {bad}"
            )
        if len(set(thing_class_ids)) != len(thing_class_ids):
            raise ValueError(
                f"DatasetSpec {self.name!r}: `thing_class_ids` has repeated ids. "
                f"Received: {sorted(thing_class_ids)}"
            )
        return tuple(sorted(thing_class_ids))

    def _validate_divisor_and_ignore(self, num_classes):
        if not _is_int(self.label_divisor) or self.label_divisor < 2:
            raise ValueError(
                f"DatasetSpec {self.name!r}: `label_divisor` must be an int >= 2. "
                f"Received: label_divisor={self.label_divisor!r}"
            )
        if not _is_int(self.ignore_label) or self.ignore_label < num_classes:
            raise ValueError(
                f"DatasetSpec {self.name!r}: `ignore_label` must be an int >= num_classes "
                f"({num_classes}) so that it is never a real class. "
                f"Received: ignore_label={self.ignore_label!r}"
            )
        largest = self.ignore_label * self.label_divisor + self.label_divisor - 1
        if largest > MAX_PANOPTIC_ID:
            raise ValueError(
                f"DatasetSpec {self.name!r}: panoptic ids up to ignore_label * label_divisor + "
                f"label_divisor - 1 = {largest} do not fit the 24-bit RGB label encoding "
                f"(max {MAX_PANOPTIC_ID}). Received: ignore_label={self.ignore_label}, "
                f"label_divisor={self.label_divisor}"
            )

    def _validate_colors(self, colors, num_classes):
        colors = tuple(tuple(c) if isinstance(c, (list, tuple)) else c for c in colors)
        if len(colors) != num_classes:
            raise ValueError(
                f"DatasetSpec {self.name!r}: `colors` must have one (r, g, b) per class "
                f"({num_classes}). Received {len(colors)} colors."
            )
        for class_id, color in enumerate(colors):
            if (
                not isinstance(color, tuple)
                or len(color) != 3
                or not all(_is_int(v) and 0 <= v <= 255 for v in color)
            ):
                raise ValueError(
                    f"DatasetSpec {self.name!r}: color of class {class_id} "
                    f"({self.class_names[class_id]!r}) must be 3 ints in 0..255. "
                    f"Received: {color!r}"
                )
        return colors

    def _validate_category_ids(self, category_ids, num_classes):
        category_ids = tuple(category_ids)
        if len(category_ids) != num_classes:
            raise ValueError(
                f"DatasetSpec {self.name!r}: `category_ids` must have one id per class "
                f"({num_classes}). Received {len(category_ids)} ids."
            )
        bad = [i for i in category_ids if not _is_int(i) or i < 0]
        if bad:
            raise ValueError(
                f"DatasetSpec {self.name!r}: `category_ids` must be non-negative ints. "
                f"Received: {bad}"
            )
        if len(set(category_ids)) != num_classes:
            raise ValueError(
                f"DatasetSpec {self.name!r}: `category_ids` must be unique. "
                f"Received: {list(category_ids)}"
            )
        return category_ids

    # --- derived -----------------------------------------------------------------------------

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def stuff_class_ids(self):
        things = set(self.thing_class_ids)
        return tuple(i for i in range(self.num_classes) if i not in things)

    def is_thing(self, class_id):
        """Whether contiguous `class_id` is a thing class."""
        return class_id in self.thing_class_ids

    def class_id(self, class_name):
        """Contiguous id of `class_name`; raises `KeyError` naming the known classes."""
        try:
            return self.class_names.index(class_name)
        except ValueError:
            raise KeyError(
                f"Class {class_name!r} is not in dataset {self.name!r}. "
                f"Known classes: {list(self.class_names)}"
            ) from None

    def dataset_category_ids(self):
        """The dataset's category id per contiguous id (`category_ids`, or `0..num_classes-1`)."""
        if self.category_ids is None:
            return tuple(range(self.num_classes))
        return self.category_ids

    def to_coco_categories(self):
        """The spec as a COCO panoptic `categories` list (`id`, `name`, `isthing`, `color`)."""
        categories = []
        for class_id, (name, category_id) in enumerate(
            zip(self.class_names, self.dataset_category_ids())
        ):
            entry = {"id": category_id, "name": name, "isthing": int(self.is_thing(class_id))}
            if self.colors is not None:
                entry["color"] = list(self.colors[class_id])
            categories.append(entry)
        return categories

    @classmethod
    def from_coco_categories(cls, categories, *, name, label_divisor=256, ignore_label=255):
        """Builds a spec from a COCO panoptic `categories` list, in the list's order.

        Args:
            categories: list of dicts with `id`, `name`, `isthing` and optionally `color`.
            name: the spec's name.
            label_divisor: defaults to `256`.
            ignore_label: defaults to `255`.
        """
        if not isinstance(categories, (list, tuple)) or not categories:
            raise ValueError(
                f"Expected a non-empty list of COCO categories. Received: {categories!r:.200}"
            )
        for index, category in enumerate(categories):
            keys = category if isinstance(category, dict) else {}
            missing = [k for k in ("id", "name", "isthing") if k not in keys]
            if missing:
                raise ValueError(
                    f"COCO category #{index} lacks {missing}; expected keys 'id', 'name', "
                    f"'isthing'. Received: {category!r}"
                )
        colors = None
        if all("color" in c for c in categories):
            colors = [tuple(int(v) for v in c["color"]) for c in categories]
        return cls(
            name=name,
            class_names=[c["name"] for c in categories],
            thing_class_ids=[i for i, c in enumerate(categories) if c["isthing"]],
            label_divisor=label_divisor,
            ignore_label=ignore_label,
            colors=colors,
            category_ids=[int(c["id"]) for c in categories],
        )

    # --- serialisation -----------------------------------------------------------------------

    def to_dict(self):
        """A JSON-compatible dict (lists, not tuples); `from_dict` inverts it."""
        data = {
            "name": self.name,
            "class_names": list(self.class_names),
            "thing_class_ids": list(self.thing_class_ids),
            "label_divisor": self.label_divisor,
            "ignore_label": self.ignore_label,
        }
        if self.colors is not None:
            data["colors"] = [list(c) for c in self.colors]
        if self.category_ids is not None:
            data["category_ids"] = list(self.category_ids)
        return data

    @classmethod
    def from_dict(cls, data):
        if not isinstance(data, dict):
            raise TypeError(f"Expected a dict describing a DatasetSpec. Received: {type(data)}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(
                f"Unknown DatasetSpec keys {unknown}; expected a subset of {sorted(fields)}."
            )
        required = ("name", "class_names", "thing_class_ids", "label_divisor")
        missing = [k for k in required if k not in data]
        if missing:
            raise ValueError(
                f"DatasetSpec dict lacks required keys {missing}. Received keys: {sorted(data)}"
            )
        return cls(**data)

    def to_json(self, indent=2):
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"DatasetSpec JSON is not valid JSON: {error}") from None
        return cls.from_dict(data)

    def save(self, path):
        """Writes the spec as JSON to `path` (atomically)."""
        from keras_axial.utils.io import atomic_write

        with atomic_write(path, "w") as handle:
            handle.write(self.to_json() + "\n")

    @classmethod
    def load(cls, path):
        """Reads a spec saved by `save`; errors name the file."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"DatasetSpec file {path!r} does not exist.")
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        try:
            return cls.from_json(text)
        except (ValueError, TypeError) as error:
            raise ValueError(f"{path!r} is not a valid DatasetSpec: {error}") from None


# --- presets -------------------------------------------------------------------------------------

# COCO panoptic (panopticapi `panoptic_coco_categories.json`): official id, name, isthing, color.
# Contiguous ids follow this order: the 80 things are 0..79, the 53 stuff classes 80..132.
_COCO_CATEGORIES = (
    (1, "person", 1, (220, 20, 60)), (2, "bicycle", 1, (119, 11, 32)),
    (3, "car", 1, (0, 0, 142)), (4, "motorcycle", 1, (0, 0, 230)),
    (5, "airplane", 1, (106, 0, 228)), (6, "bus", 1, (0, 60, 100)),
    (7, "train", 1, (0, 80, 100)), (8, "truck", 1, (0, 0, 70)),
    (9, "boat", 1, (0, 0, 192)), (10, "traffic light", 1, (250, 170, 30)),
    (11, "fire hydrant", 1, (100, 170, 30)), (13, "stop sign", 1, (220, 220, 0)),
    (14, "parking meter", 1, (175, 116, 175)), (15, "bench", 1, (250, 0, 30)),
    (16, "bird", 1, (165, 42, 42)), (17, "cat", 1, (255, 77, 255)),
    (18, "dog", 1, (0, 226, 252)), (19, "horse", 1, (182, 182, 255)),
    (20, "sheep", 1, (0, 82, 0)), (21, "cow", 1, (120, 166, 157)),
    (22, "elephant", 1, (110, 76, 0)), (23, "bear", 1, (174, 57, 255)),
    (24, "zebra", 1, (199, 100, 0)), (25, "giraffe", 1, (72, 0, 118)),
    (27, "backpack", 1, (255, 179, 240)), (28, "umbrella", 1, (0, 125, 92)),
    (31, "handbag", 1, (209, 0, 151)), (32, "tie", 1, (188, 208, 182)),
    (33, "suitcase", 1, (0, 220, 176)), (34, "frisbee", 1, (255, 99, 164)),
    (35, "skis", 1, (92, 0, 73)), (36, "snowboard", 1, (133, 129, 255)),
    (37, "sports ball", 1, (78, 180, 255)), (38, "kite", 1, (0, 228, 0)),
    (39, "baseball bat", 1, (174, 255, 243)), (40, "baseball glove", 1, (45, 89, 255)),
    (41, "skateboard", 1, (134, 134, 103)), (42, "surfboard", 1, (145, 148, 174)),
    (43, "tennis racket", 1, (255, 208, 186)), (44, "bottle", 1, (197, 226, 255)),
    (46, "wine glass", 1, (171, 134, 1)), (47, "cup", 1, (109, 63, 54)),
    (48, "fork", 1, (207, 138, 255)), (49, "knife", 1, (151, 0, 95)),
    (50, "spoon", 1, (9, 80, 61)), (51, "bowl", 1, (84, 105, 51)),
    (52, "banana", 1, (74, 65, 105)), (53, "apple", 1, (166, 196, 102)),
    (54, "sandwich", 1, (208, 195, 210)), (55, "orange", 1, (255, 109, 65)),
    (56, "broccoli", 1, (0, 143, 149)), (57, "carrot", 1, (179, 0, 194)),
    (58, "hot dog", 1, (209, 99, 106)), (59, "pizza", 1, (5, 121, 0)),
    (60, "donut", 1, (227, 255, 205)), (61, "cake", 1, (147, 186, 208)),
    (62, "chair", 1, (153, 69, 1)), (63, "couch", 1, (3, 95, 161)),
    (64, "potted plant", 1, (163, 255, 0)), (65, "bed", 1, (119, 0, 170)),
    (67, "dining table", 1, (0, 182, 199)), (70, "toilet", 1, (0, 165, 120)),
    (72, "tv", 1, (183, 130, 88)), (73, "laptop", 1, (95, 32, 0)),
    (74, "mouse", 1, (130, 114, 135)), (75, "remote", 1, (110, 129, 133)),
    (76, "keyboard", 1, (166, 74, 118)), (77, "cell phone", 1, (219, 142, 185)),
    (78, "microwave", 1, (79, 210, 114)), (79, "oven", 1, (178, 90, 62)),
    (80, "toaster", 1, (65, 70, 15)), (81, "sink", 1, (127, 167, 115)),
    (82, "refrigerator", 1, (59, 105, 106)), (84, "book", 1, (142, 108, 45)),
    (85, "clock", 1, (196, 172, 0)), (86, "vase", 1, (95, 54, 80)),
    (87, "scissors", 1, (128, 76, 255)), (88, "teddy bear", 1, (201, 57, 1)),
    (89, "hair drier", 1, (246, 0, 122)), (90, "toothbrush", 1, (191, 162, 208)),
    (92, "banner", 0, (255, 255, 128)), (93, "blanket", 0, (147, 211, 203)),
    (95, "bridge", 0, (150, 100, 100)), (100, "cardboard", 0, (168, 171, 172)),
    (107, "counter", 0, (146, 112, 198)), (109, "curtain", 0, (210, 170, 100)),
    (112, "door-stuff", 0, (92, 136, 89)), (118, "floor-wood", 0, (218, 88, 184)),
    (119, "flower", 0, (241, 129, 0)), (122, "fruit", 0, (217, 17, 255)),
    (125, "gravel", 0, (124, 74, 181)), (128, "house", 0, (70, 70, 70)),
    (130, "light", 0, (255, 228, 255)), (133, "mirror-stuff", 0, (154, 208, 0)),
    (138, "net", 0, (193, 0, 92)), (141, "pillow", 0, (76, 91, 113)),
    (144, "platform", 0, (255, 180, 195)), (145, "playingfield", 0, (106, 154, 176)),
    (147, "railroad", 0, (230, 150, 140)), (148, "river", 0, (60, 143, 255)),
    (149, "road", 0, (128, 64, 128)), (151, "roof", 0, (92, 82, 55)),
    (154, "sand", 0, (254, 212, 124)), (155, "sea", 0, (73, 77, 174)),
    (156, "shelf", 0, (255, 160, 98)), (159, "snow", 0, (255, 255, 255)),
    (161, "stairs", 0, (104, 84, 109)), (166, "tent", 0, (169, 164, 131)),
    (168, "towel", 0, (225, 199, 255)), (171, "wall-brick", 0, (137, 54, 74)),
    (175, "wall-stone", 0, (135, 158, 223)), (176, "wall-tile", 0, (7, 246, 231)),
    (177, "wall-wood", 0, (107, 255, 200)), (178, "water-other", 0, (58, 41, 149)),
    (180, "window-blind", 0, (183, 121, 142)), (181, "window-other", 0, (255, 73, 97)),
    (184, "tree-merged", 0, (107, 142, 35)), (185, "fence-merged", 0, (190, 153, 153)),
    (186, "ceiling-merged", 0, (146, 139, 141)), (187, "sky-other-merged", 0, (70, 130, 180)),
    (188, "cabinet-merged", 0, (134, 199, 156)), (189, "table-merged", 0, (209, 226, 140)),
    (190, "floor-other-merged", 0, (96, 36, 108)), (191, "pavement-merged", 0, (96, 96, 96)),
    (192, "mountain-merged", 0, (64, 170, 64)), (193, "grass-merged", 0, (152, 251, 152)),
    (194, "dirt-merged", 0, (208, 229, 228)), (195, "paper-merged", 0, (206, 186, 171)),
    (196, "food-other-merged", 0, (152, 161, 64)),
    (197, "building-other-merged", 0, (116, 112, 0)),
    (198, "rock-merged", 0, (0, 114, 143)), (199, "wall-other-merged", 0, (102, 102, 156)),
    (200, "rug-merged", 0, (250, 141, 255)),
)

# Cityscapes (cityscapesScripts `labels.py`): the 19 evaluated classes in train-id order, with
# their label id (the category id of `cityscapes_panoptic_*.json` made without `--use-train-id`).
_CITYSCAPES_CATEGORIES = (
    (7, "road", 0, (128, 64, 128)), (8, "sidewalk", 0, (244, 35, 232)),
    (11, "building", 0, (70, 70, 70)), (12, "wall", 0, (102, 102, 156)),
    (13, "fence", 0, (190, 153, 153)), (17, "pole", 0, (153, 153, 153)),
    (19, "traffic light", 0, (250, 170, 30)), (20, "traffic sign", 0, (220, 220, 0)),
    (21, "vegetation", 0, (107, 142, 35)), (22, "terrain", 0, (152, 251, 152)),
    (23, "sky", 0, (70, 130, 180)), (24, "person", 1, (220, 20, 60)),
    (25, "rider", 1, (255, 0, 0)), (26, "car", 1, (0, 0, 142)),
    (27, "truck", 1, (0, 0, 70)), (28, "bus", 1, (0, 60, 100)),
    (31, "train", 1, (0, 80, 100)), (32, "motorcycle", 1, (0, 0, 230)),
    (33, "bicycle", 1, (119, 11, 32)),
)

# Mapillary Vistas v1.2 panoptic (`panoptic_2018.json`): 65 evaluated classes, 37 things.
_MAPILLARY_VISTAS_CATEGORIES = (
    (1, "Bird", 1, (165, 42, 42)), (2, "Ground Animal", 1, (0, 192, 0)),
    (3, "Curb", 0, (196, 196, 196)), (4, "Fence", 0, (190, 153, 153)),
    (5, "Guard Rail", 0, (180, 165, 180)), (6, "Barrier", 0, (90, 120, 150)),
    (7, "Wall", 0, (102, 102, 156)), (8, "Bike Lane", 0, (128, 64, 255)),
    (9, "Crosswalk - Plain", 1, (140, 140, 200)), (10, "Curb Cut", 0, (170, 170, 170)),
    (11, "Parking", 0, (250, 170, 160)), (12, "Pedestrian Area", 0, (96, 96, 96)),
    (13, "Rail Track", 0, (230, 150, 140)), (14, "Road", 0, (128, 64, 128)),
    (15, "Service Lane", 0, (110, 110, 110)), (16, "Sidewalk", 0, (244, 35, 232)),
    (17, "Bridge", 0, (150, 100, 100)), (18, "Building", 0, (70, 70, 70)),
    (19, "Tunnel", 0, (150, 120, 90)), (20, "Person", 1, (220, 20, 60)),
    (21, "Bicyclist", 1, (255, 0, 0)), (22, "Motorcyclist", 1, (255, 0, 100)),
    (23, "Other Rider", 1, (255, 0, 200)), (24, "Lane Marking - Crosswalk", 1, (200, 128, 128)),
    (25, "Lane Marking - General", 0, (255, 255, 255)), (26, "Mountain", 0, (64, 170, 64)),
    (27, "Sand", 0, (230, 160, 50)), (28, "Sky", 0, (70, 130, 180)),
    (29, "Snow", 0, (190, 255, 255)), (30, "Terrain", 0, (152, 251, 152)),
    (31, "Vegetation", 0, (107, 142, 35)), (32, "Water", 0, (0, 170, 30)),
    (33, "Banner", 1, (255, 255, 128)), (34, "Bench", 1, (250, 0, 30)),
    (35, "Bike Rack", 1, (100, 140, 180)), (36, "Billboard", 1, (220, 220, 220)),
    (37, "Catch Basin", 1, (220, 128, 128)), (38, "CCTV Camera", 1, (222, 40, 40)),
    (39, "Fire Hydrant", 1, (100, 170, 30)), (40, "Junction Box", 1, (40, 40, 40)),
    (41, "Mailbox", 1, (33, 33, 33)), (42, "Manhole", 1, (100, 128, 160)),
    (43, "Phone Booth", 1, (142, 0, 0)), (44, "Pothole", 0, (70, 100, 150)),
    (45, "Street Light", 1, (210, 170, 100)), (46, "Pole", 1, (153, 153, 153)),
    (47, "Traffic Sign Frame", 1, (128, 128, 128)), (48, "Utility Pole", 1, (0, 0, 80)),
    (49, "Traffic Light", 1, (250, 170, 30)), (50, "Traffic Sign (Back)", 1, (192, 192, 192)),
    (51, "Traffic Sign (Front)", 1, (220, 220, 0)), (52, "Trash Can", 1, (140, 140, 20)),
    (53, "Bicycle", 1, (119, 11, 32)), (54, "Boat", 1, (150, 0, 255)),
    (55, "Bus", 1, (0, 60, 100)), (56, "Car", 1, (0, 0, 142)),
    (57, "Caravan", 1, (0, 0, 90)), (58, "Motorcycle", 1, (0, 0, 230)),
    (59, "On Rails", 0, (0, 80, 100)), (60, "Other Vehicle", 1, (128, 64, 64)),
    (61, "Trailer", 1, (0, 0, 110)), (62, "Truck", 1, (0, 0, 70)),
    (63, "Wheeled Slow", 1, (0, 0, 192)), (64, "Car Mount", 0, (32, 32, 32)),
    (65, "Ego Vehicle", 0, (120, 10, 10)),
)

# The embedded synthetic dataset (`keras_axial.data.synthetic`): three textured stuff classes and
# three shape things.
_SYNTHETIC_CATEGORIES = (
    (1, "stripes", 0, (230, 160, 50)), (2, "checkerboard", 0, (70, 130, 180)),
    (3, "speckle", 0, (107, 142, 35)), (4, "disk", 1, (220, 20, 60)),
    (5, "rectangle", 1, (0, 0, 142)), (6, "triangle", 1, (160, 80, 200)),
)


def _spec_from_table(name, table, label_divisor, ignore_label):
    return DatasetSpec(
        name=name,
        class_names=[row[1] for row in table],
        thing_class_ids=[i for i, row in enumerate(table) if row[2]],
        label_divisor=label_divisor,
        ignore_label=ignore_label,
        colors=[row[3] for row in table],
        category_ids=[row[0] for row in table],
    )


_REGISTRY = {}
_ALIASES = {}


def register_dataset_spec(spec, *, aliases=(), overwrite=False):
    """Adds `spec` to the registry under `spec.name` (and `aliases`) for `get_dataset_spec`.

    Args:
        spec: a `DatasetSpec`.
        aliases: other names that resolve to it. Defaults to `()`.
        overwrite: replace a spec already registered under that name. Defaults to `False`.
    """
    if not isinstance(spec, DatasetSpec):
        raise TypeError(f"register_dataset_spec expects a DatasetSpec. Received: {type(spec)}")
    for key in (spec.name, *aliases):
        if not overwrite and (key in _REGISTRY or key in _ALIASES):
            raise ValueError(f"A dataset spec named {key!r} is already registered.")
    _REGISTRY[spec.name] = spec
    for alias in aliases:
        _ALIASES[alias] = spec.name
    return spec


def list_dataset_specs():
    """Names of the registered dataset specs (aliases not included), sorted."""
    return sorted(_REGISTRY)


def get_dataset_spec(name):
    """Returns a registered `DatasetSpec` by name or alias, or loads one from a JSON file path.

    Args:
        name: `"coco"`, `"cityscapes"`, `"mapillary_vistas"`, `"synthetic"`, another registered
            name or alias, the path of a `dataset_spec.json` file, or a converted dataset folder
            (which holds one).

    Example:
        >>> get_dataset_spec("cityscapes").thing_class_ids
        (11, 12, 13, 14, 15, 16, 17, 18)
    """
    if isinstance(name, DatasetSpec):
        return name
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"Dataset spec name must be a string. Received: {name!r}")
    key = os.fspath(name)
    key = _ALIASES.get(key, key)
    if key in _REGISTRY:
        return _REGISTRY[key]
    if os.path.isdir(key) and os.path.isfile(os.path.join(key, "dataset_spec.json")):
        return DatasetSpec.load(os.path.join(key, "dataset_spec.json"))
    if key.endswith(".json") or os.path.isfile(key):
        return DatasetSpec.load(key)
    raise ValueError(
        f"Unknown dataset spec {name!r}. Registered: {list_dataset_specs()} "
        f"(aliases: {sorted(_ALIASES)}), or pass a dataset_spec.json file or a converted "
        "dataset folder that holds one."
    )


COCO_PANOPTIC = register_dataset_spec(
    _spec_from_table("coco", _COCO_CATEGORIES, label_divisor=256, ignore_label=255),
    aliases=("coco_panoptic",),
)
CITYSCAPES_PANOPTIC = register_dataset_spec(
    _spec_from_table("cityscapes", _CITYSCAPES_CATEGORIES, label_divisor=1000, ignore_label=255),
    aliases=("cityscapes_panoptic",),
)
# Mapillary images hold hundreds of instances of some classes: label_divisor 1000 like Cityscapes.
MAPILLARY_VISTAS_PANOPTIC = register_dataset_spec(
    _spec_from_table(
        "mapillary_vistas", _MAPILLARY_VISTAS_CATEGORIES, label_divisor=1000, ignore_label=255
    ),
    aliases=("mapillary", "mapillary_vistas_panoptic"),
)
SYNTHETIC_PANOPTIC = register_dataset_spec(
    _spec_from_table("synthetic", _SYNTHETIC_CATEGORIES, label_divisor=256, ignore_label=255),
    aliases=("synthetic_panoptic",),
)
