#!/bin/sh
# Finds the ArUco markers in every frame of an uploaded video NAME.EXT with OpenCV and
# writes:
#   NAME-detected.avi      the video with a box and the id drawn on each marker found
#                          (MPEG-4 part 2, same frames and frame rate, no audio)
#   NAME-detections.json   {"video", "frames", "fps", "width", "height",
#                           "detections": [{"frame", "id", "box": [x, y, w, h]}, ...],
#                           "summary": {"<id>": frames seen, ...}}
# Frames are numbered from 0.  The markers are looked up in the dictionary named by
# ARUCO_DICTIONARY (default DICT_4X4_50, what make_videos.py draws).
#
# This function is meant for a host with a CUDA GPU; OpenCV's ArUco detector runs on
# the CPU, and the log says whether OpenCV sees a CUDA device.
set -eu

name=$(basename "$INPUT_FILE_PATH")
if [ ! -s "$INPUT_FILE_PATH" ]; then
  echo "error: $name is missing or empty" >&2
  exit 1
fi
echo "read $name: $(wc -c <"$INPUT_FILE_PATH" | tr -d ' ') bytes"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi -L 2>/dev/null | sed 's/^/host has /' || true
fi

python3 - "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR" "${ARUCO_DICTIONARY:-DICT_4X4_50}" <<'EOF'
from __future__ import annotations

import json
import os
import re
import sys
import time

try:
    import cv2
except ImportError:
    sys.exit("error: OpenCV (cv2) is not installed for " + sys.executable)


def cuda_devices() -> int:
    try:
        return int(cv2.cuda.getCudaEnabledDeviceCount())
    except (AttributeError, cv2.error):
        return 0


def main() -> None:
    path, out_dir, dictionary_name = sys.argv[1:4]
    started = time.monotonic()
    devices = cuda_devices()
    if devices:
        print(f"OpenCV {cv2.__version__} sees {devices} CUDA device(s); ArUco runs on the CPU")
    else:
        built = re.search(r"NVIDIA CUDA:\s*YES", cv2.getBuildInformation()) is not None
        why = "" if built else " (this OpenCV is built without CUDA)"
        print(f"OpenCV {cv2.__version__}: no CUDA device: running on the CPU{why}")

    if not hasattr(cv2.aruco, dictionary_name) or not dictionary_name.startswith("DICT_"):
        sys.exit(f"error: no ArUco dictionary {dictionary_name!r} in cv2.aruco")
    dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, dictionary_name))
    detector = cv2.aruco.ArucoDetector(dictionary, cv2.aruco.DetectorParameters())

    capture = cv2.VideoCapture(path)
    ok, frame = capture.read() if capture.isOpened() else (False, None)
    if not ok or frame is None:
        sys.exit(f"error: OpenCV cannot read a frame of {os.path.basename(path)}")
    fps = capture.get(cv2.CAP_PROP_FPS)
    if not fps or fps <= 0 or fps > 1000:
        print(f"the video does not say its frame rate ({fps}): writing 25 fps")
        fps = 25.0
    height, width = frame.shape[:2]
    print(f"video: {width}x{height} at {fps:g} fps, markers from {dictionary_name}")

    base = os.path.splitext(os.path.basename(path))[0]
    video_out = os.path.join(out_dir, base + "-detected.avi")
    writer = cv2.VideoWriter(video_out, cv2.VideoWriter.fourcc(*"XVID"), fps, (width, height))
    if not writer.isOpened():
        sys.exit(f"error: OpenCV cannot write {video_out}")

    detections = []
    summary: dict[str, int] = {}
    frames = 0
    while ok and frame is not None:
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        corners, ids, _rejected = detector.detectMarkers(gray)
        if ids is not None:
            cv2.aruco.drawDetectedMarkers(frame, corners, None, (0, 255, 0))
            for quad, marker_id in zip(corners, ids.flatten().tolist()):  # noqa: B905
                x, y, w, h = (int(v) for v in cv2.boundingRect(quad.reshape(-1, 2)))
                cv2.rectangle(frame, (x - 3, y - 3), (x + w + 3, y + h + 3), (0, 0, 255), 2)
                cv2.putText(frame, f"id {marker_id}", (x, max(12, y - 8)),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 255), 2)  # fmt: skip
                detections.append({"frame": frames, "id": int(marker_id), "box": [x, y, w, h]})
                summary[str(marker_id)] = summary.get(str(marker_id), 0) + 1
        writer.write(frame)
        frames += 1
        ok, frame = capture.read()
    capture.release()
    writer.release()

    result = {
        "video": os.path.basename(path),
        "frames": frames,
        "fps": fps,
        "width": width,
        "height": height,
        "dictionary": dictionary_name,
        "detections": detections,
        "summary": dict(sorted(summary.items(), key=lambda item: int(item[0]))),
    }
    json_out = os.path.join(out_dir, base + "-detections.json")
    lines = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in result.items() if k != "detections"]
    rows = ",\n".join("  " + json.dumps(d) for d in detections)  # one detection a line
    lines.insert(-1, f' "detections": [\n{rows}\n ]')
    with open(json_out, "w", encoding="utf-8") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")

    seconds = time.monotonic() - started
    seen = ", ".join(f"id {k} in {v} frames" for k, v in result["summary"].items())
    print(f"{frames} frames in {seconds:.1f} s ({frames / seconds:.0f} frames/s): "
          f"{len(detections)} markers found: {seen or 'none'}")  # fmt: skip
    print(f"wrote {base}-detected.avi and {base}-detections.json")


main()
EOF
