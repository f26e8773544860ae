#!/bin/sh
# Count the words of the input; pretend that big inputs take a while.
set -eu
name=$(basename "$INPUT_FILE_PATH" .txt)
if [ "$(wc -c < "$INPUT_FILE_PATH")" -gt 10000 ]; then
  sleep 30
fi
wc -w < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$name.count"
echo "counted $STORAGE_OBJECT_KEY"
