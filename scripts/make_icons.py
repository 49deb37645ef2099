"""Draws the 16x16 PNG icons (one per palette category and node family) into icons/.

Run once after adding a category: `python scripts/make_icons.py`. Each icon is a rounded
square in the family colour with a 1-3 letter glyph, drawn with Pillow's default font.
"""
from pathlib import Path

from PIL import Image, ImageDraw

ICONS = {  # name: (colour, glyph)
    "tinyuop": ("#2b5797", "T"), "io": ("#00a300", "IO"), "elementwise": ("#1e7145", "+"),
    "activation": ("#da532c", "f"), "reduce": ("#603cba", "S"), "movement": ("#00aba9", "<>"),
    "layers": ("#2d89ef", "L"), "attention": ("#b91d47", "A"), "blocks": ("#e3a21a", "B"),
    "user": ("#7e3878", "U"), "graph": ("#1d1d1d", "G"), "train": ("#9f00a7", "Tr"),
    "inference": ("#ee1111", "In"), "evaluation": ("#99b433", "Ev"), "onnx": ("#555555", "O"),
    "llm": ("#ff0097", "AI"), "experiments": ("#0050ef", "Ex"),
}


def main(out: Path = Path(__file__).resolve().parent.parent / "icons") -> None:
    out.mkdir(exist_ok=True)
    for name, (colour, glyph) in ICONS.items():
        im = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
        d = ImageDraw.Draw(im)
        d.rounded_rectangle((0, 0, 15, 15), radius=3, fill=colour)
        w = d.textlength(glyph)
        d.text(((16 - w) / 2, 2), glyph, fill="white")
        im.save(out / f"{name}.png")


if __name__ == "__main__":
    main()
