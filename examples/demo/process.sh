#!/bin/sh
# Upper-cases a text file and counts its words.  The work takes SECONDS_PER_100_KIB
# seconds per 100 KiB of input, to stand in for a job whose time grows with its input.
set -eu
name=$(basename "$INPUT_FILE_PATH")
base=${name%.*}
size=$(wc -c < "$INPUT_FILE_PATH")
work=$(( size * SECONDS_PER_100_KIB / 102400 ))
echo "processing $name: $size bytes, about ${work}s of work"
sleep "$work"
tr '[:lower:]' '[:upper:]' < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$base.upper.txt"
words=$(wc -w < "$INPUT_FILE_PATH" | tr -d ' ')
printf '{"file": "%s", "bytes": %s, "words": %s, "request": "%s"}\n' \
  "$name" "$size" "$words" "$REQUEST_ID" > "$TMP_OUTPUT_DIR/$base.stats.json"
echo "wrote $base.upper.txt and $base.stats.json"
