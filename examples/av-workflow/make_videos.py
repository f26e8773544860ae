#!/usr/bin/env python3
"""Generate test videos for the audio/video workflow, with the truth of what is in them.

Each video has an FFmpeg test pattern as its background, three ArUco markers
(dictionary DICT_4X4_50) that move across the frame and appear or disappear at known
frames, and an English voice track spoken by espeak-ng.  Beside each video
``PREFIX-NN.mp4`` a sidecar ``PREFIX-NN.json`` records what was put in it::

    {"video": "video-01.mp4", "frames": 150, "fps": 25, "width": 640, "height": 360,
     "text": "the spoken text", "markers": {"0": [first_frame, last_frame], ...}, ...}

Frames are numbered from 0.  A marker is drawn whole, with a white quiet zone around
it, in every frame from first_frame to last_frame inclusive, and in no other frame.

Needs ffmpeg and espeak-ng on the PATH, and numpy and opencv-python (cv2.aruco).

    python make_videos.py /tmp/videos --count 3 --seconds 6 --size 640x360 --fps 25
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ARUCO_DICTIONARY = "DICT_4X4_50"
MARKERS_PER_VIDEO = 3
QUIET_MODULES = 1  # white margin around each marker, in modules (cells)
BACKGROUNDS = ("testsrc2", "smptebars", "testsrc")
VOICE = "en-us+f2"
WORDS_PER_MINUTE = 165
LEAD_IN_S = 0.3
GAP_S = 0.6

# Sentences that CMUSphinx's bundled English model recognises well when spoken by
# espeak-ng with the voice above.  Video N starts at group N (wrapping around) and
# goes on through the following sentences for as long as they fit in the video.
SENTENCE_GROUPS: tuple[tuple[str, ...], ...] = (
    ("the quick brown fox jumps over the lazy dog", "one two three four five"),
    ("i would like a cup of coffee", "the music is too loud", "what time is it"),
    ("can you help me find my keys", "the movie starts at eight"),
    ("i will call you tomorrow morning", "the computer is on the desk"),
    ("we are going to the market tomorrow", "i like to eat apples and oranges"),
    ("please open the door and turn on the lights", "thank you very much"),
    ("the company reported strong sales this year", "what time is it"),
    ("the sun is shining and the sky is blue", "the birds are singing in the trees"),
)


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``WxH`` into (width, height)."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 640x360, not {text!r}") from None
    if width < 160 or height < 120 or width % 2 or height % 2:
        raise argparse.ArgumentTypeError(f"size must be even and at least 160x120, not {text!r}")
    return width, height


@functools.cache
def video_encoder() -> list[str]:
    """FFmpeg options for H.264 (libx264) when this FFmpeg has it, MPEG-4 part 2 otherwise."""
    encoders = subprocess.run(
        ["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, check=True
    ).stdout
    if " libx264 " in encoders:
        return ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"]
    return ["-c:v", "mpeg4", "-q:v", "3", "-pix_fmt", "yuv420p"]


def sentences_for(index: int) -> list[str]:
    """The sentences of video ``index`` (1-based), in order, as many as could ever fit."""
    flat = [s for group in SENTENCE_GROUPS for s in group]
    start = sum(len(group) for group in SENTENCE_GROUPS[: (index - 1) % len(SENTENCE_GROUPS)])
    return flat[start:] + flat[:start]


def speak(text: str, workdir: Path) -> tuple[np.ndarray, int]:
    """Speak ``text`` with espeak-ng; return its samples (int16, mono, trimmed) and rate."""
    wav_path = workdir / "sentence.wav"
    subprocess.run(
        ["espeak-ng", "-v", VOICE, "-s", str(WORDS_PER_MINUTE), "-w", str(wav_path), text],
        check=True,
    )
    with wave.open(str(wav_path)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        if w.getnchannels() > 1:
            samples = samples.reshape(-1, w.getnchannels())[:, 0]
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 300)
    if loud.size:
        margin = rate // 50
        samples = samples[max(0, loud[0] - margin) : loud[-1] + margin]
    return samples, rate


def make_speech(index: int, seconds: float, workdir: Path) -> tuple[Path, list[dict[str, Any]]]:
    """Write a voice track exactly ``seconds`` long; return it and its sentences' times."""
    pieces: list[np.ndarray] = []
    spoken: list[dict[str, Any]] = []
    rate = 22050
    position = LEAD_IN_S
    for sentence in sentences_for(index):
        samples, rate = speak(sentence, workdir)
        length = len(samples) / rate
        if spoken and position + length > seconds - 0.2:
            break
        if not pieces:
            pieces.append(np.zeros(round(LEAD_IN_S * rate), dtype="<i2"))
        pieces.append(samples)
        spoken.append(
            {"text": sentence, "start": round(position, 3), "end": round(position + length, 3)}
        )
        position += length + GAP_S
        pieces.append(np.zeros(round(GAP_S * rate), dtype="<i2"))
    total = round(seconds * rate)
    audio = np.zeros(total, dtype="<i2")
    joined = np.concatenate(pieces)[:total]
    audio[: len(joined)] = joined
    spoken[-1]["end"] = min(spoken[-1]["end"], round(seconds, 3))  # cut when it did not fit
    path = workdir / "speech.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(audio.tobytes())
    return path, spoken


def marker_plan(index: int, frames: int, size: tuple[int, int]) -> list[dict[str, Any]]:
    """Where each marker of video ``index`` is: its id, frames, lane and side in pixels.

    The frame is cut into three horizontal lanes, one marker per lane, so that the
    markers never overlap.  Each marker is drawn with a white quiet zone around it.
    """
    width, height = size
    lane = height // MARKERS_PER_VIDEO
    tile_modules = 6 + 2 * QUIET_MODULES  # 4x4 bits + black border = 6 modules, + margin
    module = max(4, min(int(lane * 0.9), width // 5) // tile_modules)
    shift = (index - 1) % 3
    first_last = [
        (0, frames - 1),
        (round(frames * (0.2 + 0.1 * shift)), frames - 1),
        (0, round(frames * (0.8 - 0.1 * shift)) - 1),
    ]
    plan = []
    for j in range(MARKERS_PER_VIDEO):
        first, last = first_last[j]
        plan.append(
            {
                "id": ((index - 1) * MARKERS_PER_VIDEO + j) % 50,
                "first": first,
                "last": last,
                "lane": j,
                "module": module,
                "left_to_right": j != 1,
            }
        )
    return plan


def tile_position(marker: dict[str, Any], frame: int, size: tuple[int, int]) -> tuple[int, int]:
    """Top-left corner of the marker's tile (marker plus quiet zone) in ``frame``."""
    width, height = size
    lane = height // MARKERS_PER_VIDEO
    tile = (6 + 2 * QUIET_MODULES) * marker["module"]
    span = max(1, marker["last"] - marker["first"])
    progress = (frame - marker["first"]) / span
    if not marker["left_to_right"]:
        progress = 1.0 - progress
    margin = 4
    x = margin + round(progress * (width - tile - 2 * margin))
    y = marker["lane"] * lane + (lane - tile) // 2
    return x, y


def make_video(
    path: Path | str, index: int, seconds: float, size: tuple[int, int] | str, fps: float
) -> dict[str, Any]:
    """Write test video number ``index`` (1-based) to ``path`` and return its truth.

    ``size`` is (width, height) or "WxH".  The truth is what the sidecar JSON holds;
    this function writes only the video, not the sidecar.  The spoken text is as many
    sentences as fit in the video (the first one is cut if even it does not fit).
    """
    path = Path(path)
    if isinstance(size, str):
        size = parse_size(size)
    frames = round(seconds * fps)
    if frames < 1:
        raise ValueError(f"{seconds} s at {fps} fps is no frame at all")
    seconds = frames / fps
    width, height = size
    background = BACKGROUNDS[(index - 1) % len(BACKGROUNDS)]
    plan = marker_plan(index, frames, size)
    dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, ARUCO_DICTIONARY))
    tiles = {}
    for marker in plan:
        module = marker["module"]
        side, quiet = 6 * module, QUIET_MODULES * module
        tile = np.full((side + 2 * quiet, side + 2 * quiet, 3), 255, dtype=np.uint8)
        image = cv2.aruco.generateImageMarker(dictionary, marker["id"], side, borderBits=1)
        tile[quiet : quiet + side, quiet : quiet + side] = image[:, :, None]
        tiles[marker["id"]] = tile

    with tempfile.TemporaryDirectory(prefix="make_videos-") as tmp:
        speech_path, spoken = make_speech(index, seconds, Path(tmp))
        ffmpeg = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error"]
        source = subprocess.Popen(
            [
                *ffmpeg,
                "-f", "lavfi",
                "-i", f"{background}=size={width}x{height}:rate={fps}",
                "-frames:v", str(frames),
                "-f", "rawvideo", "-pix_fmt", "bgr24", "-",
            ],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        sink = subprocess.Popen(
            [
                *ffmpeg, "-y",
                "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}",
                "-r", str(fps), "-i", "-",
                "-i", str(speech_path),
                "-map", "0:v", "-map", "1:a",
                *video_encoder(),
                "-c:a", "aac", "-b:a", "64k",
                "-movflags", "+faststart",
                str(path),
            ],
            stdin=subprocess.PIPE,
        )  # fmt: skip
        assert source.stdout is not None
        assert sink.stdin is not None
        frame_bytes = width * height * 3
        try:
            for number in range(frames):
                data = source.stdout.read(frame_bytes)
                if len(data) != frame_bytes:
                    raise RuntimeError(f"ffmpeg {background} gave only {number} frames")
                frame = np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3).copy()
                for marker in plan:
                    if marker["first"] <= number <= marker["last"]:
                        x, y = tile_position(marker, number, size)
                        tile = tiles[marker["id"]]
                        frame[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
                sink.stdin.write(frame.tobytes())
        finally:
            sink.stdin.close()
            source.stdout.close()
            source.wait()
            sink.wait()
        if sink.returncode:
            raise RuntimeError(f"ffmpeg could not write {path} (exit {sink.returncode})")

    return {
        "video": path.name,
        "frames": frames,
        "fps": fps,
        "width": width,
        "height": height,
        "seconds": round(seconds, 3),
        "background": background,
        "text": " ".join(s["text"] for s in spoken),
        "speech": spoken,
        "aruco_dictionary": ARUCO_DICTIONARY,
        "marker_side_px": 6 * plan[0]["module"],
        "markers": {str(m["id"]): [m["first"], m["last"]] for m in plan},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Generate test videos (test pattern + moving ArUco markers + espeak-ng "
        "voice) and a JSON sidecar with the truth beside each.",
        epilog="Beside OUTDIR/PREFIX-01.mp4, OUTDIR/PREFIX-01.json holds the number of frames, "
        "the frame rate, the spoken text and, for each marker id (dictionary DICT_4X4_50), "
        "the first and last frame it is drawn in (frames numbered from 0).",
    )
    parser.add_argument("outdir", type=Path, help="folder to write the videos in")
    parser.add_argument("--count", type=int, default=2, help="how many videos (default 2)")
    parser.add_argument(
        "--seconds", type=float, default=6.0, help="length of each video (default 6)"
    )
    parser.add_argument("--size", type=parse_size, default=(640, 360), help="WxH (default 640x360)")
    parser.add_argument("--fps", type=float, default=25.0, help="frame rate (default 25)")
    parser.add_argument(
        "--prefix", default="video", help="name prefix: PREFIX-01.mp4... (default video)"
    )
    args = parser.parse_args(argv)
    if args.count < 1 or args.seconds <= 0 or args.fps <= 0:
        parser.error("--count, --seconds and --fps must be positive")
    for tool in ("ffmpeg", "espeak-ng"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not on the PATH")
    fps: float = int(args.fps) if args.fps == int(args.fps) else args.fps
    args.outdir.mkdir(parents=True, exist_ok=True)
    for index in range(1, args.count + 1):
        started = time.monotonic()
        video = args.outdir / f"{args.prefix}-{index:02d}.mp4"
        truth = make_video(video, index, args.seconds, args.size, fps)
        video.with_suffix(".json").write_text(json.dumps(truth, indent=2) + "\n")
        markers = ", ".join(f"id {k} frames {a}-{b}" for k, (a, b) in truth["markers"].items())
        print(
            f"wrote {video} ({truth['frames']} frames, {time.monotonic() - started:.1f}s): "
            f"{markers}; says {truth['text']!r}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
