#!/bin/sh
# `make run`: run SAM with the model in $SAM_MODEL, else the first GGUF in
# $SAM_HOME/models, else the small story model shipped beside the repo.
set -eu
SAM="$1"
home="${SAM_HOME:-$HOME/.local/share/sam}"
model="${SAM_MODEL:-}"
if [ -z "$model" ] && [ -d "$home/models" ]; then
	model=$(find "$home/models" -maxdepth 1 -name '*.gguf' | sort | head -n 1)
fi
if [ -z "$model" ] && [ -f ../shared/models/stories260K.gguf ]; then
	model=../shared/models/stories260K.gguf
fi
if [ -z "$model" ]; then
	echo "no model found: set SAM_MODEL=/path/to/model.gguf or put one in $home/models" >&2
	exit 1
fi
prompt="${SAM_PROMPT:-Once upon a time}"
echo "sam run -m $model -p \"$prompt\"" >&2
"$SAM" run -m "$model" -p "$prompt" -n "${SAM_N:-256}"
echo
