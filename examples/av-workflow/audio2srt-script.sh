#!/bin/sh
# Makes subtitles NAME.srt from the speech in an uploaded NAME.wav, with CMUSphinx
# (pocketsphinx 5 and its bundled US English model: no download).
#
# The audio is cut at its silences by pocketsphinx's voice activity detector, each
# stretch of speech is decoded on its own, and its words become one cue, or several
# when it is long (at most SRT_MAX_WORDS words or SRT_MAX_SECONDS seconds per cue).
# The best input is 16 kHz mono 16-bit PCM, as ffmpeg-script.sh writes; anything else
# is converted with ffmpeg first, when ffmpeg is on the PATH.
set -eu

name=$(basename "$INPUT_FILE_PATH")
if [ ! -s "$INPUT_FILE_PATH" ]; then
  echo "error: $name is missing or empty" >&2
  exit 1
fi
echo "read $name: $(wc -c <"$INPUT_FILE_PATH" | tr -d ' ') bytes"

python3 - "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR" \
  "${SRT_MAX_WORDS:-10}" "${SRT_MAX_SECONDS:-5}" <<'EOF'
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
import wave

try:
    from pocketsphinx import Decoder, Segmenter
except ImportError:
    sys.exit("error: pocketsphinx is not installed for " + sys.executable)

RATE = 16000
FRAMES_PER_SECOND = 100  # pocketsphinx's word times are in 10 ms frames


def read_pcm(path: str) -> bytes:
    """The audio of ``path`` as 16 kHz mono 16-bit little-endian PCM."""
    try:
        with wave.open(path) as w:
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2):
                return bytes(w.readframes(w.getnframes()))
            print(
                f"{w.getframerate()} Hz, {w.getnchannels()} channel(s), "
                f"{8 * w.getsampwidth()} bit: converting to 16 kHz mono 16 bit"
            )
    except (wave.Error, EOFError) as exc:
        print(f"not a plain PCM WAV file ({exc}): converting with ffmpeg")
    if shutil.which("ffmpeg") is None:
        sys.exit("error: the input is not 16 kHz mono 16-bit PCM WAV and ffmpeg is missing")
    run = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", path,
         "-vn", "-ac", "1", "-ar", str(RATE), "-f", "s16le", "-"],
        capture_output=True,
    )  # fmt: skip
    if run.returncode:
        sys.exit(f"error: ffmpeg cannot read the audio: {run.stderr.decode(errors='replace')}")
    return run.stdout


def timestamp(seconds: float) -> str:
    ms = max(0, round(seconds * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def words_of(decoder: Decoder, offset: float) -> list[tuple[str, float, float]]:
    """The words of the last utterance: (word, start, end) in seconds from the start."""
    words = []
    for seg in decoder.seg():
        word = seg.word
        if word.startswith(("<", "[", "+")):  # <s>, </s>, <sil>, [NOISE], ++GARBAGE++
            continue
        word = word.split("(")[0]  # "the(2)" is the second pronunciation of "the"
        start = offset + seg.start_frame / FRAMES_PER_SECOND
        end = offset + (seg.end_frame + 1) / FRAMES_PER_SECOND
        words.append((word, start, end))
    return words


def cues_of(
    words: list[tuple[str, float, float]], max_words: int, max_seconds: float
) -> list[tuple[float, float, str]]:
    """One cue for a stretch of speech, or several of even length when it is long."""
    if not words:
        return []
    seconds = words[-1][2] - words[0][1]
    count = max(-(-len(words) // max_words), int(-(-seconds // max_seconds)), 1)
    count = min(count, len(words))
    cues = []
    for i in range(count):
        part = words[i * len(words) // count : (i + 1) * len(words) // count]
        cues.append((part[0][1], part[-1][2], " ".join(w for w, _, _ in part)))
    return cues


def main() -> None:
    path, out_dir = sys.argv[1], sys.argv[2]
    max_words, max_seconds = int(sys.argv[3]), float(sys.argv[4])
    started = time.monotonic()
    pcm = read_pcm(path)
    duration = len(pcm) / (2 * RATE)
    print(f"audio: {duration:.2f} s")
    if not pcm:
        sys.exit("error: the audio is empty")

    decoder = Decoder(loglevel="FATAL")
    segmenter = Segmenter(sample_rate=RATE)
    cues = []
    for speech in segmenter.segment(io.BytesIO(pcm)):
        decoder.start_utt()
        decoder.process_raw(speech.pcm, full_utt=True)
        decoder.end_utt()
        words = words_of(decoder, speech.start_time)
        text = " ".join(w for w, _, _ in words)
        print(f"  {speech.start_time:6.2f}-{speech.end_time:6.2f} s: {text or '(nothing)'}")
        cues.extend(cues_of(words, max_words, max_seconds))

    base = os.path.splitext(os.path.basename(path))[0]
    srt_path = os.path.join(out_dir, base + ".srt")
    with open(srt_path, "w", encoding="utf-8") as srt:
        for number, (start, end, text) in enumerate(cues, 1):
            end = min(max(end, start + 0.3), duration)
            srt.write(f"{number}\n{timestamp(start)} --> {timestamp(end)}\n{text}\n\n")
    word_count = sum(len(text.split()) for _, _, text in cues)
    if not cues:
        print("no speech recognised: the subtitles are empty")
    seconds = time.monotonic() - started
    print(f"wrote {base}.srt: {len(cues)} cues, {word_count} words in {seconds:.1f} s")


main()
EOF
