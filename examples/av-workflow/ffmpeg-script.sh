#!/bin/sh
# Splits an uploaded video NAME.EXT into its audio and its video:
#   NAME.wav  the first audio stream as 16 kHz mono 16-bit PCM, what CMUSphinx wants
#             (not written when the video has no audio)
#   NAME.avi  the video alone (no audio), every frame kept at the same frame rate:
#             the input itself when it is already an .avi, else re-encoded to MPEG-4
#             part 2, which OpenCV's FFmpeg backend reads.
# Needs ffmpeg and ffprobe on the PATH.
set -eu

in=$INPUT_FILE_PATH
out=$TMP_OUTPUT_DIR
name=$(basename "$in")
base=${name%.*}
ext=${name##*.}
[ "$ext" = "$name" ] && ext=
ff="ffmpeg -nostdin -hide_banner -loglevel error -y"

fail() {
  echo "error: $*" >&2
  exit 1
}

command -v ffmpeg >/dev/null 2>&1 || fail "ffmpeg is not on the PATH"
command -v ffprobe >/dev/null 2>&1 || fail "ffprobe is not on the PATH"
[ -s "$in" ] || fail "$name is missing or empty"

# What is in the file: "video" and/or "audio", one line per stream.
streams=$(ffprobe -v error -show_entries stream=codec_type -of csv=p=0 "$in" 2>&1) ||
  fail "$name is not a media file ffmpeg can read: $streams"
echo "$streams" | grep -qx video || fail "$name has no video stream"
info=$(ffprobe -v error -select_streams v:0 \
  -show_entries stream=codec_name,width,height,avg_frame_rate -of csv=p=0 "$in")
size=$(wc -c <"$in" | tr -d ' ')
echo "read $name: $size bytes, video $info"

if echo "$streams" | grep -qx audio; then
  $ff -i "$in" -map 0:a:0 -vn -ac 1 -ar 16000 -c:a pcm_s16le "$out/$base.wav"
  echo "wrote $base.wav (16 kHz mono PCM): $(wc -c <"$out/$base.wav" | tr -d ' ') bytes"
else
  echo "$name has no audio stream: no .wav written, so no subtitles"
fi

case $ext in
  avi | AVI)
    cp "$in" "$out/$base.avi"
    echo "wrote $base.avi: a copy of the input, already an AVI"
    ;;
  *)
    # passthrough: one output frame per input frame, none dropped or duplicated.
    $ff -i "$in" -map 0:v:0 -an -sn -dn -fps_mode passthrough \
      -c:v mpeg4 -q:v 3 -vtag XVID "$out/$base.avi"
    echo "wrote $base.avi (MPEG-4 part 2): $(wc -c <"$out/$base.avi" | tr -d ' ') bytes"
    ;;
esac
