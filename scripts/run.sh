#!/bin/sh
# `make run`: from nothing to a chat. Finds a model (SAM_MODEL, else
# $SAM_HOME/models, else `sam pull` of the default one, else the small test
# story model beside the repo), starts `sam api` unless one already answers,
# and opens `sam chat` on it. The api started here stops when the chat ends.
set -eu
SAM="$1"
home="${SAM_HOME:-$HOME/.local/share/sam}"
port="${SAM_API_PORT:-8765}"
url="http://127.0.0.1:$port"
mkdir -p "$home/models" "$home/logs"

model="${SAM_MODEL:-}"
[ -z "$model" ] && model=$(find "$home/models" -maxdepth 1 -name '*.gguf' | sort | head -n 1)
if [ -z "$model" ]; then
	echo "no model in $home/models: fetching the default one with 'sam pull'" >&2
	if "$SAM" pull; then
		model=$(find "$home/models" -maxdepth 1 -name '*.gguf' | sort | head -n 1)
	elif [ -f ../shared/models/stories260K.gguf ]; then
		echo "using the small story model ../shared/models/stories260K.gguf instead (it tells stories, it does not chat)" >&2
		model=../shared/models/stories260K.gguf
	else
		exit 1
	fi
fi

api_pid=""
if curl -sf "$url/api/health" >/dev/null 2>&1; then
	echo "a SAM api already answers on $url" >&2
else
	"$SAM" api --port "$port" -m "$model" 2> "$home/logs/api.log" &
	api_pid=$!
	trap 'kill "$api_pid" 2>/dev/null; wait "$api_pid" 2>/dev/null || true' EXIT INT TERM
	i=0
	until curl -sf "$url/api/ready" >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 600 ] || ! kill -0 "$api_pid" 2>/dev/null; then
			echo "sam api did not become ready; see $home/logs/api.log" >&2
			tail -n 20 "$home/logs/api.log" >&2 || true
			exit 1
		fi
		sleep 0.1
	done
	echo "sam api is serving $model on $url (log: $home/logs/api.log)" >&2
fi
SAM_API_URL="$url" "$SAM" chat
