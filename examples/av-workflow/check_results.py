#!/usr/bin/env python3
"""Check the results of the audio/video workflow against what make_videos.py put in.

For each test video (its sidecar JSON gives the truth) it looks in the result folder,
and in the folders below it, for what the workflow should have made:

* NAME.srt: well-formed SRT cues, each while something is said, that hold at least
  half of the spoken words;
* NAME.avi and NAME-detected.avi: as many frames as the original video;
* NAME-detections.json: the same number of frames, each marker found in at least
  95% of the frames it was drawn in, and no marker found where it was not drawn.

    python check_results.py /tmp/videos --results /tmp/results
    python check_results.py /tmp/videos/video-01.json --results /tmp/results

It prints a report and exits 1 when anything is wrong.  Needs opencv-python.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import cv2

MIN_MARKER_RECALL = 0.95
MIN_WORD_RECALL = 0.5
CUE_SLACK_S = 0.5  # how far a cue may reach past the speech it shows

CUE_TIME = re.compile(
    r"^(\d\d):([0-5]\d):([0-5]\d),(\d{3}) --> (\d\d):([0-5]\d):([0-5]\d),(\d{3})$"
)


def find(result_dir: Path, name: str) -> Path | None:
    """The file called ``name`` in ``result_dir`` or below it (the shallowest one)."""
    direct = result_dir / name
    if direct.is_file():
        return direct
    found = sorted(result_dir.rglob(name), key=lambda p: (len(p.parts), str(p)))
    return found[0] if found else None


def count_frames(path: Path) -> int:
    """How many frames OpenCV can read from the video at ``path``."""
    capture = cv2.VideoCapture(str(path))
    frames = 0
    while capture.grab():
        frames += 1
    capture.release()
    return frames


def parse_srt(text: str) -> tuple[list[tuple[float, float, str]], list[str]]:
    """The cues of an SRT file, as (start, end, text), and what is wrong with it."""
    cues: list[tuple[float, float, str]] = []
    problems: list[str] = []
    blocks = [b for b in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()) if b]
    for expected, block in enumerate(blocks, 1):
        lines = block.split("\n")
        if lines[0].strip() != str(expected):
            problems.append(f"cue {expected}: numbered {lines[0].strip()!r}")
        match = CUE_TIME.match(lines[1].strip()) if len(lines) > 1 else None
        if match is None:
            problems.append(f"cue {expected}: no 'HH:MM:SS,mmm --> HH:MM:SS,mmm' line")
            continue
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(g) for g in match.groups())
        start = h1 * 3600 + m1 * 60 + s1 + ms1 / 1000
        end = h2 * 3600 + m2 * 60 + s2 + ms2 / 1000
        if end <= start:
            problems.append(f"cue {expected}: ends before it starts")
        if cues and start < cues[-1][0]:
            problems.append(f"cue {expected}: starts before the cue before it")
        words = " ".join(line.strip() for line in lines[2:]).strip()
        if not words:
            problems.append(f"cue {expected}: no text")
        cues.append((start, end, words))
    return cues, problems


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def check_subtitles(truth: dict[str, Any], srt: Path) -> tuple[list[str], str]:
    cues, found_problems = parse_srt(srt.read_text(encoding="utf-8", errors="replace"))
    problems = [f"{srt.name}: {problem}" for problem in found_problems]
    spoken = set(words_of(truth["text"]))
    heard = {w for _, _, text in cues for w in words_of(text)}
    found = spoken & heard
    recall = len(found) / len(spoken) if spoken else 1.0
    seconds = truth["frames"] / truth["fps"]
    if cues and cues[-1][1] > seconds + 0.5:
        problems.append(f"{srt.name}: a cue ends at {cues[-1][1]:.2f} s, after the video")
    speech = truth.get("speech") or []
    for number, (start, end, _text) in enumerate(cues, 1):
        if speech and not any(
            start < s["end"] + CUE_SLACK_S and end > s["start"] - CUE_SLACK_S for s in speech
        ):
            problems.append(f"{srt.name}: cue {number} ({start:.2f}-{end:.2f} s) is in a silence")
    if recall < MIN_WORD_RECALL:
        problems.append(
            f"{srt.name}: only {len(found)} of the {len(spoken)} spoken words "
            f"({recall:.0%} < {MIN_WORD_RECALL:.0%})"
        )
    heard_text = " / ".join(text for _, _, text in cues)
    return problems, f"{len(cues)} cues, {recall:.0%} of the spoken words: {heard_text!r}"


def check_detections(truth: dict[str, Any], path: Path) -> tuple[list[str], str]:
    result = json.loads(path.read_text(encoding="utf-8"))
    problems = []
    if result.get("frames") != truth["frames"]:
        problems.append(f"{path.name}: {result.get('frames')} frames, not {truth['frames']}")
    if abs(float(result.get("fps") or 0) - float(truth["fps"])) > 0.01:
        problems.append(f"{path.name}: {result.get('fps')} fps, not {truth['fps']}")
    drawn = {int(k): (v[0], v[1]) for k, v in truth["markers"].items()}
    seen: dict[int, set[int]] = {}
    for detection in result.get("detections", []):
        seen.setdefault(int(detection["id"]), set()).add(int(detection["frame"]))
    notes = []
    for marker_id, (first, last) in sorted(drawn.items()):
        frames = seen.get(marker_id, set())
        inside = len({f for f in frames if first <= f <= last})
        total = last - first + 1
        outside = len(frames) - inside
        notes.append(f"id {marker_id} {inside}/{total}")
        if inside < MIN_MARKER_RECALL * total:
            problems.append(
                f"{path.name}: marker {marker_id} found in {inside} of the {total} frames "
                f"it is in ({inside / total:.0%} < {MIN_MARKER_RECALL:.0%})"
            )
        if outside:
            problems.append(
                f"{path.name}: marker {marker_id} found in {outside} frames outside "
                f"frames {first}-{last}"
            )
    for marker_id in sorted(set(seen) - set(drawn)):
        problems.append(
            f"{path.name}: marker {marker_id} found in {len(seen[marker_id])} frames, "
            "but it was never drawn"
        )
    return problems, "markers found in " + ", ".join(notes)


def check(truth: dict[str, Any], result_dir: Path) -> list[str]:
    """What is wrong with the workflow's results for one test video (empty: nothing)."""
    problems, _notes = check_with_notes(truth, Path(result_dir))
    return problems


def check_with_notes(truth: dict[str, Any], result_dir: Path) -> tuple[list[str], list[str]]:
    base = Path(truth["video"]).stem
    problems: list[str] = []
    notes: list[str] = []

    srt = find(result_dir, f"{base}.srt")
    if srt is None:
        problems.append(f"no {base}.srt")
    else:
        found, note = check_subtitles(truth, srt)
        problems += found
        notes.append(f"{srt.name}: {note}")

    for name in (f"{base}.avi", f"{base}-detected.avi"):
        video = find(result_dir, name)
        if video is None:
            problems.append(f"no {name}")
            continue
        frames = count_frames(video)
        notes.append(f"{name}: {frames} frames")
        if frames != truth["frames"]:
            problems.append(f"{name}: {frames} frames, not {truth['frames']}")

    detections = find(result_dir, f"{base}-detections.json")
    if detections is None:
        problems.append(f"no {base}-detections.json")
    else:
        try:
            found, note = check_detections(truth, detections)
        except (ValueError, KeyError, TypeError) as exc:
            found, note = [f"{detections.name}: unreadable ({exc!r})"], "unreadable"
        problems += found
        notes.append(f"{detections.name}: {note}")
    return problems, notes


def sidecars(paths: list[Path]) -> list[Path]:
    """The sidecar JSON files named, or found in the folders named."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.glob("*.json") if p.with_suffix(".mp4").exists())
        else:
            found.append(path)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Check the workflow's results against the sidecar JSON files that "
        "make_videos.py wrote."
    )
    parser.add_argument(
        "truth", nargs="+", type=Path, help="sidecar JSON files, or folders holding them"
    )
    parser.add_argument(
        "--results", type=Path, required=True, help="folder with the results (searched below)"
    )
    args = parser.parse_args(argv)
    truth_files = sidecars(args.truth)
    if not truth_files:
        parser.error("no sidecar JSON files found")
    failed = 0
    for truth_file in truth_files:
        truth = json.loads(truth_file.read_text(encoding="utf-8"))
        problems, notes = check_with_notes(truth, args.results)
        print(f"{truth['video']}: {'FAILED' if problems else 'ok'}")
        print(f"  spoken: {truth['text']!r}")
        for note in notes:
            print(f"  {note}")
        for problem in problems:
            print(f"  problem: {problem}")
        failed += bool(problems)
    print(f"{len(truth_files) - failed} of {len(truth_files)} videos ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
