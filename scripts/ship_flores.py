"""Writes assets/flores/ from a FLORES-200 checkout: every language's dev and devtest file, gzip-compressed
(text unchanged, reproducible bytes); languages.csv (code, name from the dataset's language map, script, and
each split's characters and UTF-8 bytes, sentences only, so the table needs no decompression); and SHA256SUMS,
the hash of every file, from which the app keys the token counts it keeps on disk.

    .venv/bin/python scripts/ship_flores.py /path/to/flores200
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import sys
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "assets" / "flores"
# ISO 15924 script codes (the part of a FLORES code after "_") -> the name the table shows.
SCRIPTS = {
    "Arab": "Arabic", "Armn": "Armenian", "Beng": "Bengali", "Cyrl": "Cyrillic", "Deva": "Devanagari",
    "Ethi": "Ethiopic", "Geor": "Georgian", "Grek": "Greek", "Gujr": "Gujarati", "Guru": "Gurmukhi",
    "Hang": "Hangul", "Hans": "Han (Simplified)", "Hant": "Han (Traditional)", "Hebr": "Hebrew",
    "Jpan": "Japanese (Han + kana)", "Khmr": "Khmer", "Knda": "Kannada", "Laoo": "Lao", "Latn": "Latin",
    "Mlym": "Malayalam", "Mymr": "Myanmar", "Olck": "Ol Chiki", "Orya": "Odia", "Sinh": "Sinhala",
    "Taml": "Tamil", "Telu": "Telugu", "Tfng": "Tifinagh", "Thai": "Thai", "Tibt": "Tibetan",
}


def main(source: Path) -> None:
    with open(source / "language_map.csv", encoding="utf-8") as handle:
        names = {code.strip(): name.strip() for name, code in list(csv.reader(handle))[1:]}
    assert len(set(names.values())) == len(names), "language names must be unique: the UI picks by name"
    sizes: dict[str, list[int]] = {code: [] for code in names}
    for split in ("dev", "devtest"):
        (TARGET / split).mkdir(parents=True, exist_ok=True)
        for code in names:
            data = (source / split / f"{code}.{split}").read_bytes()
            sentences = data.decode("utf-8").split("\n")[:-1]  # every file ends with a line break
            sizes[code] += [sum(map(len, sentences)), sum(len(s.encode("utf-8")) for s in sentences)]
            with open(TARGET / split / f"{code}.{split}.gz", "wb") as raw:
                with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0, filename="") as handle:
                    handle.write(data)
    with open(TARGET / "languages.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["code", "language", "script", "dev_chars", "dev_bytes", "devtest_chars", "devtest_bytes"])
        for code in sorted(names, key=lambda c: (c != "eng_Latn", names[c])):
            writer.writerow([code, names[code], SCRIPTS[code.split("_")[1]], *sizes[code]])
    files = ["languages.csv"] + [f"{split}/{code}.{split}.gz" for split in ("dev", "devtest") for code in sorted(names)]
    sums = [f"{hashlib.sha256((TARGET / name).read_bytes()).hexdigest()}  {name}\n" for name in files]
    (TARGET / "SHA256SUMS").write_text("".join(sums))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
